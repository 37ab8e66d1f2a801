import { describe, expect, it, vi } from "vitest";
import { fakeApi } from "../test/fakeApi";
import { PACKAGES } from "../test/fixtures";
import { ApiError, createClient, isApiError, toApiError } from "./client";

async function caught(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (error) {
    if (isApiError(error)) return error;
    throw error;
  }
  throw new Error("expected an ApiError");
}

describe("toApiError", () => {
  it("reads the API's error shape", () => {
    const error = toApiError(403, {
      error: { code: "forbidden", message: "not yours", retryable: false },
    });
    expect(error).toMatchObject({
      status: 403,
      code: "forbidden",
      message: "not yours",
      retryable: false,
    });
  });

  it("reads API Gateway's 401", () => {
    const error = toApiError(401, { message: "Unauthorized" });
    expect(error).toMatchObject({
      status: 401,
      code: "unauthorized",
      message: "Unauthorized",
      retryable: false,
    });
  });

  it("names a reply in no known shape by its status", () => {
    expect(toApiError(502, "<html>Bad gateway</html>")).toMatchObject({
      code: "http_error",
      retryable: true,
      message: "The API answered 502.",
    });
    expect(toApiError(503, undefined)).toMatchObject({
      code: "service_unavailable",
      retryable: true,
    });
  });
});

describe("TokenBillingClient", () => {
  it("sends the bearer token and returns the typed reply", async () => {
    const api = fakeApi({ "GET /api/v1/token-packages": { json: PACKAGES } });
    const packages = await api.client.listPackages();
    expect(packages.data.map((pack) => pack.id)).toEqual(["starter", "growth", "pro"]);
    expect(api.requests[0]?.headers.get("Authorization")).toBe("Bearer token-a");
  });

  it("encodes path parameters and drops empty query values", async () => {
    const api = fakeApi({
      "GET /api/v1/customers/a%2Fb/tokens/transactions": {
        json: { data: [], has_more: false, next_cursor: null },
      },
    });
    await api.client.listTransactions("a/b", { limit: 5, cursor: null });
    expect(api.requests[0]?.query.toString()).toBe("limit=5");
  });

  it("sends the purchase body and its Idempotency-Key", async () => {
    const api = fakeApi({
      "POST /api/v1/customers/cust_a/tokens/purchase": {
        json: {
          object: "checkout",
          order_id: "ord_1",
          checkout_url: "https://pay.test/cs_1",
          session_id: "cs_1",
          status: "pending",
          package_id: "growth",
          price_cents: 4900,
          currency: "usd",
        },
      },
    });
    const reply = await api.client.startCheckout("cust_a", { package_id: "growth" }, "key-1");
    expect(reply.checkout_url).toBe("https://pay.test/cs_1");
    expect(api.requests[0]?.headers.get("Idempotency-Key")).toBe("key-1");
    expect(api.requests[0]?.headers.get("Content-Type")).toBe("application/json");
    expect(api.requests[0]?.body).toEqual({ package_id: "growth" });
  });

  it("turns error replies into ApiError", async () => {
    const api = fakeApi({
      "GET /api/v1/customers/cust_b/dashboard": {
        status: 403,
        json: {
          error: { code: "forbidden", message: "You may not read this customer", retryable: false },
        },
      },
    });
    const error = await caught(api.client.getDashboard("cust_b"));
    expect(error).toMatchObject({ status: 403, code: "forbidden" });
  });

  it("reports an unreachable API as a retryable network error", async () => {
    const api = fakeApi({ "GET /api/v1/token-rates": { fail: true } });
    const error = await caught(api.client.listRates());
    expect(error).toMatchObject({ status: 0, code: "network_error", retryable: true });
  });

  it("tells a CORS refusal from an unreachable API: the API answers a no-cors probe", async () => {
    // The browser refused the PUT (its preflight did not allow it); the API itself is up.
    const api = fakeApi({
      "PUT /api/v1/customers/cust_a/tokens/auto-top-up": { fail: true },
      "GET /api/v1/customers/cust_a/tokens/auto-top-up": (request) =>
        request.mode === "no-cors" ? { status: 401, json: {} } : { fail: true },
    });
    const error = await caught(api.client.updateAutoTopUp("cust_a", { enabled: false }));
    expect(error).toMatchObject({ status: 0, code: "cors_refused", retryable: false });
    expect(error.message).toContain("does not allow PUT requests from http://localhost:3000");
    const probe = api.requests[1];
    expect([probe?.method, probe?.mode, probe?.headers.get("Authorization")]).toEqual([
      "GET",
      "no-cors",
      null,
    ]);
    expect(probe?.body).toBeUndefined(); // the probe sends nothing and changes nothing
  });

  it("says so when the device is offline, without probing", async () => {
    vi.spyOn(navigator, "onLine", "get").mockReturnValue(false);
    const api = fakeApi({ "GET /api/v1/token-rates": { fail: true } });
    const error = await caught(api.client.listRates());
    expect(error).toMatchObject({ code: "network_error", message: "This device is offline." });
    expect(api.requests).toHaveLength(1);
  });

  it("gives up after its timeout", async () => {
    const never = vi.fn(
      (_url: RequestInfo | URL, init?: RequestInit) =>
        new Promise<Response>((_, reject) =>
          init?.signal?.addEventListener("abort", () =>
            reject(new DOMException("aborted", "AbortError")),
          ),
        ),
    );
    const client = createClient({ baseUrl: "http://api.test/", fetch: never, timeoutMs: 10 });
    const error = await caught(client.listPackages());
    expect(error.code).toBe("timeout");
    expect(String(never.mock.calls[0]?.[0])).toBe("http://api.test/api/v1/token-packages");
  });

  it("lets a caller's abort through untouched", async () => {
    const api = fakeApi({ "GET /api/v1/token-packages": { fail: true } });
    const controller = new AbortController();
    controller.abort();
    await expect(api.client.listPackages(controller.signal)).rejects.toBeInstanceOf(TypeError);
  });
});
