import { beforeEach, describe, expect, it, vi } from "vitest";
import {
  cognitoSignInUrl,
  currentSession,
  finishCognitoSignIn,
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

  it("builds the authorize URL of the implicit grant", () => {
    const url = new URL(cognitoSignInUrl(COGNITO, "https://app.example.com", "state-1"));
    expect(url.origin + url.pathname).toBe(
      "https://billing.auth.us-east-1.amazoncognito.com/oauth2/authorize",
    );
    expect(Object.fromEntries(url.searchParams)).toEqual({
      response_type: "token",
      client_id: "client123",
      redirect_uri: "https://app.example.com/auth/callback",
      scope: "openid email",
      state: "state-1",
    });
  });

  it("takes the ID token from the callback fragment when the state matches", () => {
    const token = jwt({ "custom:customer_id": "cust_c", exp: FUTURE });
    sessionStorage.setItem("token-billing.oauth-state", "s1");
    expect(finishCognitoSignIn(`#id_token=${token}&access_token=x&state=s1`).customerId).toBe(
      "cust_c",
    );
  });

  it("refuses a callback with another state", () => {
    sessionStorage.setItem("token-billing.oauth-state", "s1");
    expect(() => finishCognitoSignIn("#id_token=x.y.z&state=s2")).toThrow(
      "does not belong to this browser tab",
    );
  });
});
