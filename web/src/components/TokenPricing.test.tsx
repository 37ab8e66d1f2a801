import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { fakeApi } from "../test/fakeApi";
import { estimate, GROWTH, PACKAGES, PRO, RATES } from "../test/fixtures";
import { renderWithClient } from "../test/render";
import { TokenPricing } from "./TokenPricing";

const CATALOG = {
  "GET /api/v1/token-packages": { json: PACKAGES },
  "GET /api/v1/token-rates": { json: RATES },
  "POST /api/v1/usage-estimate": { json: estimate(GROWTH, "5000") },
};

describe("TokenPricing", () => {
  it("shows the three packs with price, tokens, bonus and hours", async () => {
    const api = fakeApi(CATALOG);
    renderWithClient(api.client, <TokenPricing customerId="cust_a" />);
    const growth = await screen.findByTestId("package-growth");
    expect(within(growth).getByRole("heading", { name: "Growth" })).toBeTruthy();
    expect(within(growth).getByText("$49")).toBeTruthy();
    expect(within(growth).getByText("6,000")).toBeTruthy();
    expect(within(growth).getByText("+500")).toBeTruthy();
    expect(within(growth).getByText("6,500 tokens")).toBeTruthy();
    expect(within(growth).getByText("≈ 65 hours")).toBeTruthy();
    expect(screen.getByTestId("package-starter").textContent).toContain("$19");
    expect(screen.getByTestId("package-pro").textContent).toContain("16,500 tokens");
    // Beside "VM runtime: 1 token a minute", the hours say what they assume.
    expect(screen.getByTestId("estimate-assumption").textContent).toContain(
      "about 100 tokens an hour of typical use",
    );
  });

  it("highlights the calculator's recommendation", async () => {
    const api = fakeApi(CATALOG);
    renderWithClient(api.client, <TokenPricing customerId="cust_a" />);
    await waitFor(() =>
      expect(screen.getByTestId("package-growth").dataset.recommended).toBe("true"),
    );
    expect(screen.getByTestId("package-pro").dataset.recommended).toBe("false");
    expect(
      within(screen.getByTestId("package-growth")).getByText("Recommended for your usage"),
    ).toBeTruthy();
    const estimateRequest = api.requests.find(
      (request) => request.path === "/api/v1/usage-estimate",
    );
    expect(estimateRequest?.body).toEqual({
      usage: [
        { action: "vm_runtime", quantity: "3000" },
        { action: "screenshot", quantity: "1000" },
        { action: "ai_message", quantity: "2000" },
      ],
      period: "month",
    });
  });

  it("re-estimates with the period and quantities typed in", async () => {
    const api = fakeApi({
      ...CATALOG,
      "POST /api/v1/usage-estimate": (request) => ({
        json:
          (request.body as { period: string }).period === "day"
            ? estimate(PRO, "30000", 2)
            : estimate(GROWTH, "5000"),
      }),
    });
    const user = userEvent.setup();
    renderWithClient(api.client, <TokenPricing customerId="cust_a" />);
    const vm = await screen.findByLabelText(/VM runtime/);
    await user.clear(vm);
    await user.type(vm, "1000");
    await user.selectOptions(screen.getByLabelText("Quantities are per"), "day");
    await user.click(screen.getByRole("button", { name: "Estimate" }));
    await waitFor(() => expect(screen.getByTestId("package-pro").dataset.recommended).toBe("true"));
    expect(screen.getByTestId("recommended-package").textContent).toContain("2 × Pro");
    expect(api.requests.at(-1)?.body).toMatchObject({
      period: "day",
      usage: [
        { action: "vm_runtime", quantity: "1000" },
        { action: "screenshot", quantity: "1000" },
        { action: "ai_message", quantity: "2000" },
      ],
    });
  });

  it("refuses a quantity that is not a number, without calling the API", async () => {
    const api = fakeApi(CATALOG);
    const user = userEvent.setup();
    renderWithClient(api.client, <TokenPricing customerId="cust_a" />);
    const vm = await screen.findByLabelText(/VM runtime/);
    await waitFor(() => expect(screen.queryByText("Estimating…")).toBeNull());
    const before = api.requests.length;
    await user.clear(vm);
    await user.type(vm, "ten");
    await user.click(screen.getByRole("button", { name: "Estimate" }));
    expect(screen.getByRole("alert").textContent).toContain("Enter a number for VM runtime");
    expect(api.requests.length).toBe(before);
  });

  it("starts a checkout with a new Idempotency-Key per click and follows checkout_url", async () => {
    const keys: string[] = [];
    const api = fakeApi({
      ...CATALOG,
      "POST /api/v1/customers/cust_a/tokens/purchase": (request) => {
        keys.push(request.headers.get("Idempotency-Key") ?? "");
        return {
          json: {
            object: "checkout",
            order_id: "ord_1",
            checkout_url: "http://127.0.0.1:3000/_local/checkout/cs_1",
            session_id: "cs_1",
            status: "pending",
            package_id: "growth",
            price_cents: 4900,
            currency: "usd",
          },
        };
      },
    });
    const redirect = vi.fn();
    const user = userEvent.setup();
    renderWithClient(api.client, <TokenPricing customerId="cust_a" redirect={redirect} />);
    const buy = await screen.findByRole("button", { name: "Buy Growth" });
    await user.click(buy);
    await waitFor(() =>
      expect(redirect).toHaveBeenCalledWith("http://127.0.0.1:3000/_local/checkout/cs_1"),
    );
    const purchase = api.requests.find((request) => request.path.endsWith("/purchase"));
    expect(purchase?.body).toEqual({
      package_id: "growth",
      success_url: `${window.location.origin}/checkout/success`,
      cancel_url: `${window.location.origin}/checkout/cancel`,
    });
    await user.click(screen.getByRole("button", { name: "Buy Starter" }));
    await waitFor(() => expect(keys).toHaveLength(2));
    expect(keys[0]).not.toBe(keys[1]);
    expect(keys[0]).toMatch(/^[0-9a-f-]{32,36}$/);
  });

  it("shows why a checkout could not start", async () => {
    const api = fakeApi({
      ...CATALOG,
      "POST /api/v1/customers/cust_a/tokens/purchase": {
        status: 400,
        json: {
          error: {
            code: "invalid_request",
            message: "success_url must start with one of the allowed origins",
            retryable: false,
          },
        },
      },
    });
    const user = userEvent.setup();
    renderWithClient(api.client, <TokenPricing customerId="cust_a" redirect={vi.fn()} />);
    await user.click(await screen.findByRole("button", { name: "Buy Pro" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Could not start the Pro checkout");
    expect(alert.textContent).toContain("allowed origins");
  });

  it("asks a visitor to sign in instead of offering Buy", async () => {
    const api = fakeApi(CATALOG);
    renderWithClient(api.client, <TokenPricing signInHref="/sign-in" />);
    const link = await screen.findByRole("link", { name: "Sign in to buy Growth" });
    expect(link.getAttribute("href")).toBe("/sign-in");
    expect(screen.queryByRole("button", { name: /^Buy / })).toBeNull();
  });

  it("shows an error with a retry when the API is down", async () => {
    let down = true;
    const api = fakeApi({
      ...CATALOG,
      "GET /api/v1/token-packages": () => (down ? { fail: true } : { json: PACKAGES }),
      "GET /api/v1/token-rates": { fail: true },
    });
    const user = userEvent.setup();
    renderWithClient(api.client, <TokenPricing customerId="cust_a" />);
    const alerts = await screen.findAllByRole("alert");
    expect(alerts.map((alert) => alert.textContent).join(" ")).toContain(
      "Could not load token packs: Cannot reach the billing service",
    );
    down = false;
    await user.click(within(alerts[0] as HTMLElement).getByRole("button", { name: "Try again" }));
    expect(await screen.findByTestId("package-growth")).toBeTruthy();
  });
});
