// The signed-in customer, kept in sessionStorage. This example signs in with the dev
// server's development identity (`POST /_local/identity/token`, served on loopback only);
// a real app takes the customer id and the JWT from its own auth (e.g. Cognito's ID token).
import { useSyncExternalStore } from "react";
import { API_BASE_URL } from "./config";

const KEY = "token-billing-example.session";
const listeners = new Set<() => void>();

export interface Session {
  customerId: string;
  token: string;
}

function stored(): string | null {
  return window.sessionStorage.getItem(KEY);
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The session once the page runs in the browser; null while prerendering and when signed out. */
export function useSession(): Session | null {
  const raw = useSyncExternalStore(subscribe, stored, () => null);
  return raw ? (JSON.parse(raw) as Session) : null;
}

/** The bearer token the API client sends: read before every request. */
export function currentToken(): string | null {
  const raw = stored();
  return raw ? (JSON.parse(raw) as Session).token : null;
}

export async function signIn(customerId: string): Promise<void> {
  const reply = await fetch(`${API_BASE_URL}/_local/identity/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ customer_id: customerId }),
  });
  if (!reply.ok) throw new Error(`sign-in failed (${reply.status})`);
  const { token } = (await reply.json()) as { token: string };
  window.sessionStorage.setItem(KEY, JSON.stringify({ customerId, token } satisfies Session));
  listeners.forEach((listener) => listener());
}

export function signOut(): void {
  window.sessionStorage.removeItem(KEY);
  listeners.forEach((listener) => listener());
}
