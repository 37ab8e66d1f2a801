// `@token-billing/react/hooks`: the hooks the components are built on, for pages of your
// own. A new hook is one more line here (its module starts with "use client").
export { useTokenBillingClient } from "./api/context";
export { useApi } from "./api/useApi";
export type { ApiState, Loadable } from "./api/useApi";
export { newestBalance, useLiveBalance } from "./api/useLiveBalance";
export type {
  BalanceMessage,
  LiveBalance,
  LiveBalanceOptions,
  LiveStatus,
} from "./api/useLiveBalance";
