// The demo's runtime configuration, /config.json: where the API is and who signs users in.
// It is fetched when the app starts, so one build serves every environment.

export interface LocalIdentity {
  /** The dev server's development sign-in (`make dev`): no password, any customer id. */
  provider: "local";
  /** Default "/_local/identity/token", relative to apiBaseUrl. */
  tokenEndpoint: string;
}

export interface CognitoIdentity {
  /** The stack's Cognito user pool, through its hosted UI (authorization-code grant with
   * PKCE: a code comes back to the callback, exchanged with this tab's verifier). */
  provider: "cognito";
  region: string;
  userPoolId: string;
  clientId: string;
  /** The hosted UI's domain, e.g. "https://billing-demo.auth.us-east-1.amazoncognito.com". */
  domain: string;
  /** Registered as a callback URL of the app client; default `<origin>/auth/callback`. */
  redirectUri: string | null;
  scopes: string[];
}

export type IdentityConfig = LocalIdentity | CognitoIdentity;

export interface AppConfig {
  /** The API's base URL, e.g. "https://abc123.execute-api.us-east-1.amazonaws.com"; "" for
   * the page's own origin (the dev server). */
  apiBaseUrl: string;
  /** The live balance WebSocket, e.g. "wss://abc456.execute-api.us-east-1.amazonaws.com/prod"
   * (the stack output WebSocketUrl); "" for none: the pages poll. The dev server fills in
   * its own when it serves this file. */
  socketUrl?: string;
  identity: IdentityConfig;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(record: Record<string, unknown>, name: string, where: string): string {
  const value = record[name];
  if (typeof value !== "string" || value === "") {
    throw new ConfigError(`config.json: ${where}.${name} must be a non-empty string`);
  }
  return value;
}

export function parseConfig(raw: unknown): AppConfig {
  if (!isRecord(raw)) throw new ConfigError("config.json must hold a JSON object");
  const apiBaseUrl = raw.apiBaseUrl ?? "";
  if (typeof apiBaseUrl !== "string")
    throw new ConfigError("config.json: apiBaseUrl must be a string");
  const socketUrl = raw.socketUrl ?? "";
  if (typeof socketUrl !== "string" || (socketUrl !== "" && !/^wss?:\/\//.test(socketUrl)))
    throw new ConfigError("config.json: socketUrl must be a ws:// or wss:// URL, or empty");
  const identity = raw.identity;
  if (!isRecord(identity)) throw new ConfigError("config.json: identity must be an object");
  if (identity.provider === "local") {
    const endpoint = identity.tokenEndpoint ?? "/_local/identity/token";
    if (typeof endpoint !== "string")
      throw new ConfigError("config.json: identity.tokenEndpoint must be a string");
    return { apiBaseUrl, socketUrl, identity: { provider: "local", tokenEndpoint: endpoint } };
  }
  if (identity.provider === "cognito") {
    const scopes = identity.scopes ?? ["openid", "email"];
    if (!Array.isArray(scopes) || !scopes.every((scope) => typeof scope === "string")) {
      throw new ConfigError("config.json: identity.scopes must be a list of strings");
    }
    const redirectUri = identity.redirectUri ?? null;
    if (redirectUri !== null && typeof redirectUri !== "string") {
      throw new ConfigError("config.json: identity.redirectUri must be a string");
    }
    return {
      apiBaseUrl,
      socketUrl,
      identity: {
        provider: "cognito",
        region: text(identity, "region", "identity"),
        userPoolId: text(identity, "userPoolId", "identity"),
        clientId: text(identity, "clientId", "identity"),
        domain: text(identity, "domain", "identity").replace(/\/+$/, ""),
        redirectUri,
        scopes,
      },
    };
  }
  throw new ConfigError('config.json: identity.provider must be "local" or "cognito"');
}

export async function loadConfig(
  url = "/config.json",
  fetchImpl: typeof fetch = fetch,
): Promise<AppConfig> {
  let reply: Response;
  try {
    reply = await fetchImpl(url, { cache: "no-store" });
  } catch {
    throw new ConfigError(`Could not download ${url}.`);
  }
  if (!reply.ok) throw new ConfigError(`Could not download ${url} (HTTP ${reply.status}).`);
  let raw: unknown;
  try {
    raw = await reply.json();
  } catch {
    throw new ConfigError(`${url} is not valid JSON.`);
  }
  return parseConfig(raw);
}
