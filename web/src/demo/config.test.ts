import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseConfig } from "./config";

describe("parseConfig", () => {
  it("reads the committed public/config.json (local sign-in, same origin)", () => {
    const raw: unknown = JSON.parse(
      readFileSync(resolve(__dirname, "../../public/config.json"), "utf8"),
    );
    expect(parseConfig(raw)).toEqual({
      apiBaseUrl: "",
      socketUrl: "",
      identity: { provider: "local", tokenEndpoint: "/_local/identity/token" },
    });
  });

  it("reads the live balance socket URL, ws:// or wss:// only", () => {
    const identity = { provider: "local" };
    const socketUrl = "wss://abc456.execute-api.us-east-1.amazonaws.com/prod";
    expect(parseConfig({ socketUrl, identity }).socketUrl).toBe(socketUrl);
    expect(parseConfig({ identity }).socketUrl).toBe("");
    expect(() => parseConfig({ socketUrl: "https://x.example.com", identity })).toThrow(
      ConfigError,
    );
  });

  it("reads a Cognito identity with defaults", () => {
    const config = parseConfig({
      apiBaseUrl: "https://abc.execute-api.us-east-1.amazonaws.com",
      identity: {
        provider: "cognito",
        region: "us-east-1",
        userPoolId: "us-east-1_AbC",
        clientId: "client123",
        domain: "https://billing.auth.us-east-1.amazoncognito.com/",
      },
    });
    expect(config.identity).toEqual({
      provider: "cognito",
      region: "us-east-1",
      userPoolId: "us-east-1_AbC",
      clientId: "client123",
      domain: "https://billing.auth.us-east-1.amazoncognito.com",
      redirectUri: null,
      scopes: ["openid", "email"],
    });
  });

  it.each([
    [[], "must hold a JSON object"],
    [{ identity: { provider: "okta" } }, 'identity.provider must be "local" or "cognito"'],
    [{ apiBaseUrl: 3, identity: { provider: "local" } }, "apiBaseUrl must be a string"],
    [
      { identity: { provider: "cognito", region: "us-east-1" } },
      "identity.userPoolId must be a non-empty string",
    ],
  ])("refuses %j", (raw, message) => {
    expect(() => parseConfig(raw)).toThrow(message);
  });
});

describe("loadConfig", () => {
  it("reports a missing file", async () => {
    const fetchImpl = async (): Promise<Response> => new Response("nope", { status: 404 });
    await expect(loadConfig("/config.json", fetchImpl)).rejects.toEqual(
      new ConfigError("Could not download /config.json (HTTP 404)."),
    );
  });
});
