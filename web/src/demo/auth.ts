// Sign-in for the demo. The bearer token lives in sessionStorage (gone when the tab
// closes) and is sent as `Authorization: Bearer <token>`. The page never verifies it: the
// API does; the claims are read only to know whose dashboard to show.
import { ApiError, toApiError } from "../api/client";
import type { AppConfig, CognitoIdentity } from "./config";

const TOKEN_KEY = "token-billing.token";
const STATE_KEY = "token-billing.oauth-state";
const VERIFIER_KEY = "token-billing.pkce-verifier";

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

/** base64url without padding (RFC 7636's encoding of the verifier and the challenge). */
function base64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A PKCE code verifier: 32 random bytes, 43 characters. */
export function newCodeVerifier(): string {
  return base64Url(crypto.getRandomValues(new Uint8Array(32)));
}

/** The S256 code challenge of a verifier: base64url(SHA-256(verifier)). */
export async function codeChallenge(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64Url(new Uint8Array(digest));
}

/** The Cognito hosted UI's authorize URL: the authorization-code grant with PKCE, so no
 * token ever appears in a URL; only the code comes back, useless without the verifier. */
export function cognitoSignInUrl(
  identity: CognitoIdentity,
  origin: string,
  state: string,
  challenge: string,
): string {
  const query = new URLSearchParams({
    response_type: "code",
    client_id: identity.clientId,
    redirect_uri: redirectUri(identity, origin),
    scope: identity.scopes.join(" "),
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  return `${identity.domain}/oauth2/authorize?${query.toString()}`;
}

export async function startCognitoSignIn(
  identity: CognitoIdentity,
  storage: Storage = sessionStorage,
): Promise<void> {
  const state = crypto.randomUUID();
  const verifier = newCodeVerifier();
  storage.setItem(STATE_KEY, state);
  storage.setItem(VERIFIER_KEY, verifier);
  const challenge = await codeChallenge(verifier);
  window.location.assign(cognitoSignInUrl(identity, window.location.origin, state, challenge));
}

/** Finishes the sign-in on the callback (`?code=...&state=...`): checks the state this tab
 * sent, then exchanges the code and this tab's verifier at the token endpoint for the ID
 * token. The ID token carries `custom:customer_id` and the client id as `aud`, which the
 * API's JWT authorizer expects. */
export async function finishCognitoSignIn(
  identity: CognitoIdentity,
  search: string,
  origin: string = window.location.origin,
  storage: Storage = sessionStorage,
  fetchImpl: typeof fetch = fetch,
): Promise<Session> {
  const query = new URLSearchParams(search.replace(/^\?/, ""));
  const expected = storage.getItem(STATE_KEY);
  const verifier = storage.getItem(VERIFIER_KEY);
  storage.removeItem(STATE_KEY);
  storage.removeItem(VERIFIER_KEY);
  const error = query.get("error_description") ?? query.get("error");
  if (error) throw new Error(`Sign-in failed: ${error}`);
  if (!expected || !verifier || query.get("state") !== expected) {
    throw new Error("Sign-in failed: the reply does not belong to this browser tab.");
  }
  const code = query.get("code");
  if (!code) throw new Error("Sign-in failed: no authorization code in the reply.");
  let reply: Response;
  try {
    reply = await fetchImpl(`${identity.domain}/oauth2/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: identity.clientId,
        code,
        redirect_uri: redirectUri(identity, origin),
        code_verifier: verifier,
      }).toString(),
    });
  } catch {
    throw new ApiError(0, "network_error", "Cannot reach the sign-in service.", true);
  }
  const payload: unknown = await reply.json().catch(() => undefined);
  const record = typeof payload === "object" && payload !== null ? payload : {};
  if (!reply.ok) {
    const reason = "error" in record && typeof record.error === "string" ? record.error : "";
    throw new Error(`Sign-in failed: the code exchange was refused (${reason || reply.status}).`);
  }
  const token = "id_token" in record ? record.id_token : null;
  if (typeof token !== "string") throw new Error("Sign-in failed: no ID token in the reply.");
  return storeToken(token, storage);
}

export function cognitoSignOutUrl(identity: CognitoIdentity, origin: string): string {
  const query = new URLSearchParams({ client_id: identity.clientId, logout_uri: `${origin}/` });
  return `${identity.domain}/logout?${query.toString()}`;
}
