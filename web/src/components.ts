// `@token-billing/react/components`: the components and the provider they read their client
// from. Each component module is a "use client" module of its own, so a Server Component
// may render them and unused ones tree-shake away.
export { TokenBillingProvider } from "./api/context";
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
export { TokenUsageByVm } from "./components/TokenUsageByVm";
export type { TokenUsageByVmProps } from "./components/TokenUsageByVm";
export { TokenVmSpending } from "./components/TokenVmSpending";
export type { TokenVmSpendingProps } from "./components/TokenVmSpending";
export { VmLimitsForm } from "./components/VmLimitsForm";
export type { VmLimitsFormProps } from "./components/VmLimitsForm";
