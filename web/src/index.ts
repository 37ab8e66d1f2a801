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
  AutoTopUp,
  AutoTopUpAttempt,
  AutoTopUpSettings,
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
export { TokenBillingProvider, useTokenBillingClient } from "./api/context";
export type { TokenBillingProviderProps } from "./api/context";
export { PricingCalculator } from "./components/PricingCalculator";
export type { PricingCalculatorProps } from "./components/PricingCalculator";
export { TokenAutoTopUp } from "./components/TokenAutoTopUp";
export type { TokenAutoTopUpProps } from "./components/TokenAutoTopUp";
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
