// The billing API's origin, inlined by `next build` (NEXT_PUBLIC_ variables are): the
// stack's `ApiUrl` output in production, the dev server (`make dev`) by default.
export const API_BASE_URL = process.env.NEXT_PUBLIC_BILLING_API_URL ?? "http://127.0.0.1:3000";
