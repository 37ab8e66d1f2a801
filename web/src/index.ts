// The token billing web components: import them (and styles.css) into any React 19 app,
// e.g. a Next.js client page. They talk only to the public HTTP API, through the client
// given to <TokenBillingProvider>.
export {
  ApiError,
  createClient,
  isApiError,
  newIdempotencyKey,
  toApiError,
  TokenBillingClient,
} from "./api/client";
export type {
  ApiErrorCode,
  Balance,
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
export { BALANCE_SUBPROTOCOL } from "./api/client";
export type { BalanceSocket } from "./api/client";
export { TokenBillingProvider, useTokenBillingClient } from "./api/context";
export { newestBalance, useLiveBalance } from "./api/useLiveBalance";
export type {
  BalanceMessage,
  LiveBalance,
  LiveBalanceOptions,
  LiveStatus,
} from "./api/useLiveBalance";
export type { TokenBillingProviderProps } from "./api/context";
export { PricingCalculator } from "./components/PricingCalculator";
export type { PricingCalculatorProps } from "./components/PricingCalculator";
export { TokenBalanceCard } from "./components/TokenBalanceCard";
export type { TokenBalanceCardProps } from "./components/TokenBalanceCard";
export { TokenCheckout, TokenCheckoutStatus } from "./components/TokenCheckout";
export type { TokenCheckoutProps, TokenCheckoutStatusProps } from "./components/TokenCheckout";
export { TokenDashboard } from "./components/TokenDashboard";
export type { TokenDashboardProps } from "./components/TokenDashboard";
export { TokenPricing } from "./components/TokenPricing";
export type { TokenPricingProps } from "./components/TokenPricing";
export { TokenTransactionHistory } from "./components/TokenTransactionHistory";
export type { TokenTransactionHistoryProps } from "./components/TokenTransactionHistory";
