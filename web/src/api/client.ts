// The one client of the token billing HTTP API. Request and reply types come from
// schema.d.ts, generated from ../openapi.json (`npm run gen:schema`); every error reply
// becomes an ApiError in one place, `toApiError`.
//
// Nothing here touches `window` or `fetch` at import time: a Next.js server build can import
// it; requests run only when a component calls them in the browser.
import type { components, paths } from "./schema";

type Schemas = components["schemas"];
export type TokenPackage = Schemas["PackageOut"];
export type PackageList = Schemas["PackageListOut"];
export type TokenRate = Schemas["RateOut"];
export type RateList = Schemas["RateListOut"];
export type UsageEstimateRequest = Schemas["UsageEstimateIn"];
export type UsageLine = Schemas["UsageProfileLineIn"];
export type UsageEstimate = Schemas["UsageEstimateOut"];
export type Dashboard = Schemas["DashboardOut"];
export type Balance = Schemas["BalanceOut"];
export type Hold = Schemas["HoldOut"];
export type Transaction = Schemas["TransactionOut"];
export type TransactionPage = Schemas["TransactionListOut"];
export type Order = Schemas["OrderOut"];
export type OrderPage = Schemas["OrderListOut"];
export type UsageByAction = Schemas["UsageOut"];
export type PurchaseRequest = Schemas["PurchaseIn"];
export type CheckoutStarted = Schemas["PurchaseOut"];
export type AutoTopUp = Schemas["AutoTopUpOut"];
export type AutoTopUpSettings = Schemas["AutoTopUpIn"];
export type AutoTopUpAttempt = Schemas["AttemptOut"];
export type VmLimits = Schemas["VmLimitsOut"];
export type VmLimitsSettings = Schemas["VmLimitsIn"];
export type UsageByVm = Schemas["UsageByVmOut"];
export type VmUsage = Schemas["VmUsageOut"];
export type UsageDay = Schemas["UsageDayOut"];

// ---- types of one operation, read from `paths` ------------------------------------------

type Method = "get" | "post" | "put";
type PathWith<M extends Method> = {
  [P in keyof paths]: paths[P][M] extends undefined ? never : P;
}[keyof paths];
type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
type Reply<Op> = Op extends { responses: { 200: { content: { "application/json": infer T } } } }
  ? T
  : never;
type QueryOf<Op> = Op extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;
type PathParamsOf<Op> = Op extends { parameters: { path: infer T } } ? T : never;
type BodyOf<Op> = Op extends { requestBody: { content: { "application/json": infer B } } }
  ? B
  : never;

interface RequestParts<Op> {
  path?: PathParamsOf<Op>;
  query?: QueryOf<Op>;
  body?: BodyOf<Op>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

// ---- errors ---------------------------------------------------------------------------

/** Codes the API sends in `{"error": {"code"}}`, plus the client's own: `network_error`
 * (no reply), `cors_refused` (the API answered, but the browser kept the reply from this
 * page: the API's CORS does not allow its origin or the request), `timeout`,
 * `unauthorized` (API Gateway's 401) and `http_error` (a reply in no known shape). */
export type ApiErrorCode =
  | "network_error"
  | "cors_refused"
  | "timeout"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "invalid_request"
  | "conflict"
  | "insufficient_tokens"
  | "service_unavailable"
  | "http_error"
  | (string & {});

export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    /** HTTP status; 0 when no reply arrived. */
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    /** Whether the same request may succeed later. */
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export function isApiError(error: unknown): error is ApiError {
  return error instanceof ApiError;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const CODE_BY_STATUS: Record<number, ApiErrorCode> = {
  400: "invalid_request",
  401: "unauthorized",
  402: "insufficient_tokens",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
  503: "service_unavailable",
};

/** The one place an error reply becomes an ApiError: the API's `{"error": {code, message,
 * retryable}}`, API Gateway's `{"message": "Unauthorized"}`, or anything else. */
export function toApiError(status: number, body: unknown): ApiError {
  const fallbackCode = CODE_BY_STATUS[status] ?? "http_error";
  const retryableStatus = status === 429 || status >= 500;
  if (isRecord(body) && isRecord(body.error)) {
    const { code, message, retryable } = body.error;
    return new ApiError(
      status,
      typeof code === "string" ? code : fallbackCode,
      typeof message === "string" ? message : `The API answered ${status}.`,
      typeof retryable === "boolean" ? retryable : retryableStatus,
    );
  }
  if (isRecord(body) && typeof body.message === "string") {
    return new ApiError(status, fallbackCode, body.message, retryableStatus);
  }
  return new ApiError(status, fallbackCode, `The API answered ${status}.`, retryableStatus);
}

// ---- the client -----------------------------------------------------------------------

export interface ClientOptions {
  /** The API's origin (and stage path, if any), e.g. "https://api.example.com"; "" means
   * the page's own origin. */
  baseUrl: string;
  /** The bearer token of the signed-in user, read before every request. */
  getToken?: () => string | null | undefined;
  /** Defaults to the global fetch, looked up when a request is made. */
  fetch?: typeof fetch;
  /** Abort a request after this long (default 15 s). */
  timeoutMs?: number;
  /** The live balance WebSocket (`wss://<api>.execute-api.<region>.amazonaws.com/<stage>`);
   * empty or missing: no socket, the components poll instead. */
  socketUrl?: string | null;
}

/** Where and how to open the live balance socket of one customer. */
export interface BalanceSocket {
  url: string;
  /** The API's subprotocol and the bearer token: browsers cannot set headers on a socket. */
  protocols: string[];
}

export const BALANCE_SUBPROTOCOL = "token-billing.v1";

/** The usage-by-VM window: the last `days` UTC days (1-90, default 30), its `top` VMs
 * (1-50, default 10); every other VM is summed per day. */
export interface UsageByVmQuery {
  days?: number;
  top?: number;
}

export interface PageQuery {
  limit?: number;
  cursor?: string | null;
}

const DEFAULT_TIMEOUT_MS = 15_000;
/** How long the reachability probe after a failed request may take. */
const PROBE_TIMEOUT_MS = 3_000;

export class TokenBillingClient {
  private readonly baseUrl: string;

  constructor(private readonly options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
  }

  listPackages(signal?: AbortSignal): Promise<PackageList> {
    return this.request("get", "/api/v1/token-packages", { signal });
  }

  listRates(signal?: AbortSignal): Promise<RateList> {
    return this.request("get", "/api/v1/token-rates", { signal });
  }

  estimateUsage(body: UsageEstimateRequest, signal?: AbortSignal): Promise<UsageEstimate> {
    return this.request("post", "/api/v1/usage-estimate", { body, signal });
  }

  getDashboard(customerId: string, signal?: AbortSignal): Promise<Dashboard> {
    return this.request("get", "/api/v1/customers/{id}/dashboard", {
      path: { id: customerId },
      signal,
    });
  }

  getBalance(customerId: string, signal?: AbortSignal): Promise<Balance> {
    return this.request("get", "/api/v1/customers/{id}/tokens", {
      path: { id: customerId },
      signal,
    });
  }

  listTransactions(
    customerId: string,
    query: PageQuery = {},
    signal?: AbortSignal,
  ): Promise<TransactionPage> {
    return this.request("get", "/api/v1/customers/{id}/tokens/transactions", {
      path: { id: customerId },
      query,
      signal,
    });
  }

  listOrders(customerId: string, query: PageQuery = {}, signal?: AbortSignal): Promise<OrderPage> {
    return this.request("get", "/api/v1/customers/{id}/tokens/orders", {
      path: { id: customerId },
      query,
      signal,
    });
  }

  /** Starts a Stripe Checkout. `idempotencyKey` must be new for every click: a retry of
   * the same click (same key) gets the same order and session back. */
  startCheckout(
    customerId: string,
    body: PurchaseRequest,
    idempotencyKey: string,
    signal?: AbortSignal,
  ): Promise<CheckoutStarted> {
    return this.request("post", "/api/v1/customers/{id}/tokens/purchase", {
      path: { id: customerId },
      body,
      headers: { "Idempotency-Key": idempotencyKey },
      signal,
    });
  }

  /** Auto top-up: settings, saved card, state (paused / needs authentication) and the last
   * 10 attempts. */
  getAutoTopUp(customerId: string, signal?: AbortSignal): Promise<AutoTopUp> {
    return this.request("get", "/api/v1/customers/{id}/tokens/auto-top-up", {
      path: { id: customerId },
      signal,
    });
  }

  /** Sets auto top-up; enabling needs a saved card and the consent text's version. */
  updateAutoTopUp(
    customerId: string,
    body: AutoTopUpSettings,
    signal?: AbortSignal,
  ): Promise<AutoTopUp> {
    return this.request("put", "/api/v1/customers/{id}/tokens/auto-top-up", {
      path: { id: customerId },
      body,
      signal,
    });
  }

  /** Per-VM daily limits: the default for every VM and per-VM overrides. */
  getVmLimits(customerId: string, signal?: AbortSignal): Promise<VmLimits> {
    return this.request("get", "/api/v1/customers/{id}/tokens/vm-limits", {
      path: { id: customerId },
      signal,
    });
  }

  /** Replaces the per-VM daily limits (the customer's token; an admin may only lower). */
  updateVmLimits(
    customerId: string,
    body: VmLimitsSettings,
    signal?: AbortSignal,
  ): Promise<VmLimits> {
    return this.request("put", "/api/v1/customers/{id}/tokens/vm-limits", {
      path: { id: customerId },
      body,
      signal,
    });
  }

  /** Tokens per VM per day and the top VMs of the window, each with its daily limit. */
  getUsageByVm(
    customerId: string,
    query: UsageByVmQuery = {},
    signal?: AbortSignal,
  ): Promise<UsageByVm> {
    return this.request("get", "/api/v1/customers/{id}/tokens/usage", {
      path: { id: customerId },
      query: { group_by: "vm", ...query },
      signal,
    });
  }

  /** The live balance socket of `customerId`, or null when none is configured or nobody
   * is signed in. The token travels as a subprotocol, never in the URL. */
  balanceSocket(customerId: string): BalanceSocket | null {
    const base = this.options.socketUrl?.replace(/\/+$/, "");
    const token = this.options.getToken?.();
    if (!base || !token) return null;
    return {
      url: `${base}?customer_id=${encodeURIComponent(customerId)}`,
      protocols: [BALANCE_SUBPROTOCOL, token],
    };
  }

  private async request<M extends Method, P extends PathWith<M>>(
    method: M,
    template: P,
    parts: RequestParts<Operation<P, M>>,
  ): Promise<Reply<Operation<P, M>>> {
    const url = this.baseUrl + expandPath(template, parts.path) + queryString(parts.query);
    const headers: Record<string, string> = { Accept: "application/json", ...parts.headers };
    const token = this.options.getToken?.();
    if (token) headers.Authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (parts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(parts.body);
    }
    const reply = await this.send(
      url,
      { method: method.toUpperCase(), headers, body },
      parts.signal,
    );
    const payload: unknown = await readJson(reply);
    if (!reply.ok) throw toApiError(reply.status, payload);
    if (payload === undefined) throw toApiError(reply.status, undefined);
    return payload as Reply<Operation<P, M>>;
  }

  private async send(url: string, init: RequestInit, signal?: AbortSignal): Promise<Response> {
    const fetchImpl = this.options.fetch ?? globalThis.fetch.bind(globalThis);
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const onAbort = (): void => timeout.abort();
    signal?.addEventListener("abort", onAbort);
    try {
      return await fetchImpl(url, { ...init, signal: timeout.signal });
    } catch (error) {
      if (signal?.aborted) throw error; // the caller gave up: not an API error
      if (timeout.signal.aborted) {
        throw new ApiError(0, "timeout", "The billing API did not answer in time.", true);
      }
      throw await explainNoReply(url, init.method ?? "GET", fetchImpl);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }
}

/** A request that got no reply failed on the network or was refused by the browser's CORS
 * check, and the browser does not say which. In a page, one `no-cors` GET of the same URL
 * tells them apart where the browser lets us: an opaque answer means the API is up, so the
 * browser kept its reply from this origin (or refused to send the request). A GET reads
 * nothing and changes nothing; outside a browser there is no CORS to blame. */
async function explainNoReply(
  url: string,
  method: string,
  fetchImpl: typeof fetch,
): Promise<ApiError> {
  const unreachable = new ApiError(0, "network_error", "Cannot reach the billing API.", true);
  if (typeof document === "undefined") return unreachable;
  if (typeof navigator !== "undefined" && navigator.onLine === false) {
    return new ApiError(0, "network_error", "This device is offline.", true);
  }
  const probe = new AbortController();
  const timer = setTimeout(() => probe.abort(), PROBE_TIMEOUT_MS);
  try {
    await fetchImpl(url, {
      method: "GET",
      mode: "no-cors",
      credentials: "omit",
      cache: "no-store",
      signal: probe.signal,
    });
  } catch {
    return unreachable;
  } finally {
    clearTimeout(timer);
  }
  const api = new URL(url, window.location.href).origin;
  return new ApiError(
    0,
    "cors_refused",
    `The billing API (${api}) answered, but the browser refused to give its reply to this ` +
      `page: the API's CORS configuration does not allow ${method.toUpperCase()} requests ` +
      `from ${window.location.origin}.`,
    false,
  );
}

function expandPath(template: string, params: Record<string, string> | undefined): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params?.[name];
    if (value === undefined) throw new Error(`missing path parameter ${name}`);
    return encodeURIComponent(value);
  });
}

function queryString(query: object | undefined): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function readJson(reply: Response): Promise<unknown> {
  const text = await reply.text().catch(() => "");
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function createClient(options: ClientOptions): TokenBillingClient {
  return new TokenBillingClient(options);
}

/** A fresh Idempotency-Key, one per user action. */
export function newIdempotencyKey(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
