// Sign-in for the demo. The bearer token lives in sessionStorage (gone when the tab
// closes) and is sent as `Authorization: Bearer <token>`. The page never verifies it: the
// API does; the claims are read only to know whose dashboard to show.
import { ApiError, toApiError } from "../api/client";
import type { AppConfig, CognitoIdentity } from "./config";

const TOKEN_KEY = "token-billing.token";
const STATE_KEY = "token-billing.oauth-state";

export interface Session {
  token: string;
  /** `customer_id` (dev identity) or `custom:customer_id` (Cognito); null for staff. */
  customerId: string | null;
  admin: boolean;
  /** Seconds since the epoch. */
  expiresAt: number | null;
}

function decodeClaims(token: string): Record<string, unknown> | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder().decode(
      Uint8Array.from(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "=")), (c) =>
        c.charCodeAt(0),
      ),
    );
    const claims: unknown = JSON.parse(json);
    return typeof claims === "object" && claims !== null
      ? (claims as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

export function sessionFromToken(token: string, nowS = Date.now() / 1000): Session | null {
  const claims = decodeClaims(token);
  if (!claims) return null;
  const exp = typeof claims.exp === "number" ? claims.exp : null;
  if (exp !== null && exp <= nowS) return null;
  const customer = claims.customer_id ?? claims["custom:customer_id"];
  const scope = typeof claims.scope === "string" ? claims.scope.split(" ") : [];
  const groups = Array.isArray(claims["cognito:groups"]) ? claims["cognito:groups"] : [];
  return {
    token,
    customerId: typeof customer === "string" && customer ? customer : null,
    admin: scope.includes("admin") || groups.includes("admin"),
    expiresAt: exp,
  };
}

export function currentSession(storage: Storage = sessionStorage): Session | null {
  const token = storage.getItem(TOKEN_KEY);
  if (!token) return null;
  const session = sessionFromToken(token);
  if (!session) storage.removeItem(TOKEN_KEY);
  return session;
}

export function storeToken(token: string, storage: Storage = sessionStorage): Session {
  const session = sessionFromToken(token);
  if (!session) throw new Error("The sign-in returned a token that is not a valid JWT.");
  storage.setItem(TOKEN_KEY, token);
  return session;
}

export function signOut(storage: Storage = sessionStorage): void {
  storage.removeItem(TOKEN_KEY);
}

export type LocalSignIn = { customerId: string } | { admin: true };

/** The dev server's development sign-in: `POST /_local/identity/token`. */
export async function signInLocal(
  config: AppConfig,
  who: LocalSignIn,
  fetchImpl: typeof fetch = fetch,
): Promise<Session> {
  if (config.identity.provider !== "local") throw new Error("local sign-in is not configured");
  const body = "admin" in who ? { admin: true } : { customer_id: who.customerId };
  let reply: Response;
  try {
    reply = await fetchImpl(config.apiBaseUrl.replace(/\/+$/, "") + config.identity.tokenEndpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network_error", "Cannot reach the development sign-in.", true);
  }
  const payload: unknown = await reply.json().catch(() => undefined);
  if (!reply.ok) throw toApiError(reply.status, payload); // the API's error shape
  const token =
    typeof payload === "object" && payload !== null && "token" in payload ? payload.token : null;
  if (typeof token !== "string") throw toApiError(reply.status, payload);
  return storeToken(token);
}

function redirectUri(identity: CognitoIdentity, origin: string): string {
  return identity.redirectUri ?? `${origin}/auth/callback`;
}

/** The Cognito hosted UI's authorize URL (implicit grant: tokens come back in the fragment). */
export function cognitoSignInUrl(identity: CognitoIdentity, origin: string, state: string): string {
  const query = new URLSearchParams({
    response_type: "token",
    client_id: identity.clientId,
    redirect_uri: redirectUri(identity, origin),
    scope: identity.scopes.join(" "),
    state,
  });
  return `${identity.domain}/oauth2/authorize?${query.toString()}`;
}

export function startCognitoSignIn(
  identity: CognitoIdentity,
  storage: Storage = sessionStorage,
): void {
  const state = crypto.randomUUID();
  storage.setItem(STATE_KEY, state);
  window.location.assign(cognitoSignInUrl(identity, window.location.origin, state));
}

/** Reads the ID token from the callback's fragment (`#id_token=...&state=...`), checking the
 * state this tab sent. The ID token carries `custom:customer_id` and the client id as `aud`,
 * which the API's JWT authorizer expects. */
export function finishCognitoSignIn(hash: string, storage: Storage = sessionStorage): Session {
  const fragment = new URLSearchParams(hash.replace(/^#/, ""));
  const expected = storage.getItem(STATE_KEY);
  storage.removeItem(STATE_KEY);
  const error = fragment.get("error_description") ?? fragment.get("error");
  if (error) throw new Error(`Sign-in failed: ${error}`);
  if (!expected || fragment.get("state") !== expected) {
    throw new Error("Sign-in failed: the reply does not belong to this browser tab.");
  }
  const token = fragment.get("id_token");
  if (!token) throw new Error("Sign-in failed: no ID token in the reply.");
  return storeToken(token, storage);
}

export function cognitoSignOutUrl(identity: CognitoIdentity, origin: string): string {
  const query = new URLSearchParams({ client_id: identity.clientId, logout_uri: `${origin}/` });
  return `${identity.domain}/logout?${query.toString()}`;
}
