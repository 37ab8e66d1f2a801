// `@token-billing/react`: the token billing web components for any React 19 app (a Next.js
// App Router page, a Vite app). Everything of the subpath entries, from one import:
// `/components`, `/hooks`, `/client`; the stylesheet is `@token-billing/react/styles.css`.
// The components talk only to the public HTTP API, through the client given to
// <TokenBillingProvider>.
export * from "./client";
export * from "./components";
export * from "./hooks";
