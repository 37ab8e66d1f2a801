// `@token-billing/react/client`: the typed HTTP API client and its types. No React and no
// "use client": a Server Component or a route handler may import it too.
export {
  ApiError,
  BALANCE_SUBPROTOCOL,
  createClient,
  isApiError,
  newIdempotencyKey,
  toApiError,
  TokenBillingClient,
} from "./api/client";
export type {
  ApiErrorCode,
  Balance,
  BalanceSocket,
  CheckoutStarted,
  ClientOptions,
  Dashboard,
  Hold,
  Order,
  OrderPage,
  PackageList,
  PageQuery,
  PurchaseRequest,
  RateList,
  TokenPackage,
  TokenRate,
  Transaction,
  TransactionPage,
  UsageByAction,
  UsageEstimate,
  UsageEstimateRequest,
  UsageLine,
} from "./api/client";
