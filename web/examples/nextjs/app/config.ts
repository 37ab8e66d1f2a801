// Where the billing API is, inlined by `next build` (NEXT_PUBLIC_ variables are): the
// stack's outputs in production, the dev server (`make dev`) by default.
/** The HTTP API: the stack's `ApiUrl` output. */
export const API_BASE_URL = process.env.NEXT_PUBLIC_BILLING_API_URL ?? "http://127.0.0.1:3000";
/** The live balance WebSocket: the stack's `WebSocketUrl` output; "" polls instead. */
export const SOCKET_URL = process.env.NEXT_PUBLIC_BILLING_SOCKET_URL ?? "ws://127.0.0.1:3030";
