import { beforeEach, describe, expect, it, vi } from "vitest";
import {
  codeChallenge,
  cognitoSignInUrl,
  currentSession,
  finishCognitoSignIn,
  newCodeVerifier,
  sessionFromToken,
  signInLocal,
  signOut,
} from "./auth";
import type { CognitoIdentity } from "./config";

function jwt(claims: Record<string, unknown>): string {
  const encode = (value: unknown): string =>
    btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}.signature`;
}

const FUTURE = Math.floor(Date.now() / 1000) + 3600;

const COGNITO: CognitoIdentity = {
  provider: "cognito",
  region: "us-east-1",
  userPoolId: "us-east-1_AbC",
  clientId: "client123",
  domain: "https://billing.auth.us-east-1.amazoncognito.com",
  redirectUri: null,
  scopes: ["openid", "email"],
};

describe("sessions", () => {
  beforeEach(() => sessionStorage.clear());

  it("reads the customer from the dev identity's and Cognito's claims", () => {
    expect(sessionFromToken(jwt({ customer_id: "cust_a", exp: FUTURE }))).toMatchObject({
      customerId: "cust_a",
      admin: false,
    });
    expect(sessionFromToken(jwt({ "custom:customer_id": "cust_b", exp: FUTURE }))).toMatchObject({
      customerId: "cust_b",
    });
    expect(sessionFromToken(jwt({ scope: "admin", exp: FUTURE }))).toMatchObject({
      customerId: null,
      admin: true,
    });
    expect(sessionFromToken(jwt({ "cognito:groups": ["admin"], exp: FUTURE }))).toMatchObject({
      admin: true,
    });
  });

  it("forgets an expired or malformed token", () => {
    sessionStorage.setItem("token-billing.token", jwt({ customer_id: "cust_a", exp: 1 }));
    expect(currentSession()).toBeNull();
    expect(sessionStorage.length).toBe(0);
    expect(sessionFromToken("not-a-jwt")).toBeNull();
  });

  it("signs in locally through the dev server and keeps the token in sessionStorage", async () => {
    const token = jwt({ customer_id: "cust_a", exp: FUTURE });
    const fetchImpl = vi.fn(async () => new Response(JSON.stringify({ token }), { status: 200 }));
    const session = await signInLocal(
      { apiBaseUrl: "", identity: { provider: "local", tokenEndpoint: "/_local/identity/token" } },
      { customerId: "cust_a" },
      fetchImpl,
    );
    expect(session.customerId).toBe("cust_a");
    expect(fetchImpl).toHaveBeenCalledWith(
      "/_local/identity/token",
      expect.objectContaining({ method: "POST", body: JSON.stringify({ customer_id: "cust_a" }) }),
    );
    expect(currentSession()?.token).toBe(token);
    signOut();
    expect(currentSession()).toBeNull();
  });

  it("shows the dev server's refusal", async () => {
    const fetchImpl = vi.fn(
      async () =>
        new Response(
          JSON.stringify({
            error: { code: "invalid_request", message: "customer_id: letters, digits, _ and -" },
          }),
          {
            status: 400,
          },
        ),
    );
    await expect(
      signInLocal(
        { apiBaseUrl: "", identity: { provider: "local", tokenEndpoint: "/t" } },
        { customerId: "a b" },
        fetchImpl,
      ),
    ).rejects.toThrow("customer_id: letters, digits, _ and -");
  });
});

describe("Cognito hosted UI", () => {
  beforeEach(() => sessionStorage.clear());

  it("builds the authorize URL of the authorization-code grant with PKCE", () => {
    const url = new URL(
      cognitoSignInUrl(COGNITO, "https://app.example.com", "state-1", "challenge-1"),
    );
    expect(url.origin + url.pathname).toBe(
      "https://billing.auth.us-east-1.amazoncognito.com/oauth2/authorize",
    );
    expect(Object.fromEntries(url.searchParams)).toEqual({
      response_type: "code",
      client_id: "client123",
      redirect_uri: "https://app.example.com/auth/callback",
      scope: "openid email",
      state: "state-1",
      code_challenge: "challenge-1",
      code_challenge_method: "S256",
    });
  });

  it("derives the S256 challenge: base64url(SHA-256(verifier)), unpadded", async () => {
    // Reference value from Python's hashlib and base64.urlsafe_b64encode.
    expect(await codeChallenge("dBjftJeZ4CVP-mJ0kEcXEgvlRMA3yDWqvKAVYuw4Iyo")).toBe(
      "DL6DpGNIeXverdz5_LIfHwA01WvFffr-xabTT4m5pWU",
    );
    const verifier = newCodeVerifier();
    expect(verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newCodeVerifier()).not.toBe(verifier);
  });

  it("exchanges the code and this tab's verifier for the ID token", async () => {
    const token = jwt({ "custom:customer_id": "cust_c", exp: FUTURE });
    sessionStorage.setItem("token-billing.oauth-state", "s1");
    sessionStorage.setItem("token-billing.pkce-verifier", "verifier-1");
    const fetchImpl = vi.fn(
      async () =>
        new Response(JSON.stringify({ id_token: token, access_token: "a", token_type: "Bearer" }), {
          status: 200,
          headers: { "Content-Type": "application/json" },
        }),
    );
    const session = await finishCognitoSignIn(
      COGNITO,
      "?code=code-1&state=s1",
      "https://app.example.com",
      sessionStorage,
      fetchImpl,
    );
    expect(session.customerId).toBe("cust_c");
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    const [url, init] = fetchImpl.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("https://billing.auth.us-east-1.amazoncognito.com/oauth2/token");
    expect(init.method).toBe("POST");
    expect(Object.fromEntries(new URLSearchParams(String(init.body)))).toEqual({
      grant_type: "authorization_code",
      client_id: "client123",
      code: "code-1",
      redirect_uri: "https://app.example.com/auth/callback",
      code_verifier: "verifier-1",
    });
    // The verifier is used once.
    expect(sessionStorage.getItem("token-billing.pkce-verifier")).toBeNull();
  });

  it("refuses a callback with another state and exchanges nothing", async () => {
    sessionStorage.setItem("token-billing.oauth-state", "s1");
    sessionStorage.setItem("token-billing.pkce-verifier", "verifier-1");
    const fetchImpl = vi.fn();
    await expect(
      finishCognitoSignIn(
        COGNITO,
        "?code=c&state=s2",
        "https://app.example.com",
        sessionStorage,
        fetchImpl,
      ),
    ).rejects.toThrow("does not belong to this browser tab");
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it("refuses a callback without this tab's verifier", async () => {
    sessionStorage.setItem("token-billing.oauth-state", "s1");
    await expect(
      finishCognitoSignIn(
        COGNITO,
        "?code=c&state=s1",
        "https://app.example.com",
        sessionStorage,
        vi.fn(),
      ),
    ).rejects.toThrow("does not belong to this browser tab");
  });

  it("reports a refused code exchange", async () => {
    sessionStorage.setItem("token-billing.oauth-state", "s1");
    sessionStorage.setItem("token-billing.pkce-verifier", "verifier-1");
    const fetchImpl = vi.fn(
      async () => new Response(JSON.stringify({ error: "invalid_grant" }), { status: 400 }),
    );
    await expect(
      finishCognitoSignIn(
        COGNITO,
        "?code=c&state=s1",
        "https://app.example.com",
        sessionStorage,
        fetchImpl,
      ),
    ).rejects.toThrow("invalid_grant");
  });
});
