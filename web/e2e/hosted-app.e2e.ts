// Issue 22: the web app as the stack hosts it (DeployWebApp=true), under exactly the headers
// of template.yaml's CloudFront policy, on an origin of its own (local/hosted_web_app.py),
// with its endpoints filled in as `make publish-web` fills config.json. Sign-in, a purchase
// and the live balance must work with no Content-Security-Policy violation: the policy once
// allowed only https://*.execute-api..., which does not cover the socket's wss:.
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DESKTOP, launchChromium, openPage, type TestPage } from "./browser";
import { invokeDebit } from "./invoke";

const baseUrl = inject("baseUrl");
const hostedAppUrl = inject("hostedAppUrl");
const ROOT = resolve(__dirname, "../..");
const customer = `e2e_hosted_${randomUUID().slice(0, 8)}`;
const STARTUP_TIMEOUT_MS = 30_000;

let app: ChildProcess | undefined;
let appLog = "";
let socketUrl = "";
let browser: Browser;
const opened: TestPage[] = [];

async function waitForApp(): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (app?.exitCode !== null) break;
    try {
      if ((await fetch(`${hostedAppUrl}/`, { signal: AbortSignal.timeout(2000) })).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((wait) => setTimeout(wait, 200));
  }
  throw new Error(`the hosted app did not start at ${hostedAppUrl}:\n${appLog}`);
}

beforeAll(async () => {
  // The dev server's own config.json names its WebSocket API (the stack's WebSocketUrl).
  socketUrl = ((await (await fetch(`${baseUrl}/config.json`)).json()) as { socketUrl: string })
    .socketUrl;
  expect(socketUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
  const port = new URL(hostedAppUrl).port;
  app = spawn(
    resolve(ROOT, ".venv/bin/python"),
    ["-m", "local.hosted_web_app", "--port", port, "--api-url", baseUrl, "--socket-url", socketUrl],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  app.stdout?.on("data", (chunk: Buffer) => (appLog += chunk.toString()));
  app.stderr?.on("data", (chunk: Buffer) => (appLog += chunk.toString()));
  await waitForApp();
  browser = await launchChromium();
});

afterAll(async () => {
  for (const { context } of opened) await context.close().catch(() => undefined);
  await browser?.close();
  app?.kill("SIGTERM");
});

/** A page on the hosted app that records every CSP violation: the browser's console
 * reports and the documents' `securitypolicyviolation` events, across navigations. */
async function openHosted(): Promise<TestPage & { violations: string[] }> {
  const opening = await openPage(browser, hostedAppUrl, DESKTOP);
  opened.push(opening);
  const violations: string[] = [];
  await opening.context.exposeBinding("reportCspViolation", (_source, text: string) => {
    violations.push(text);
  });
  await opening.context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      const report = (window as unknown as { reportCspViolation: (text: string) => void })
        .reportCspViolation;
      report(`${event.effectiveDirective} blocked ${event.blockedURI} on ${event.documentURI}`);
    });
  });
  opening.page.on("console", (message) => {
    if (message.text().includes("Content Security Policy")) violations.push(message.text());
  });
  return { ...opening, violations };
}

async function available(page: Page): Promise<string | null> {
  return page.getByTestId("available-tokens").textContent();
}

describe("the hosted web app under the template's CloudFront headers", () => {
  it("is served with the policy's headers, its connect-src naming the API and the socket", async () => {
    for (const path of ["/", "/dashboard", "/config.json"]) {
      const reply = await fetch(`${hostedAppUrl}${path}`);
      expect(reply.status, path).toBe(200);
      const csp = reply.headers.get("content-security-policy") ?? "";
      expect(csp, path).toContain("default-src 'self'");
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(csp, path).toContain(`connect-src 'self' ${baseUrl} ${socketUrl}`);
      expect(reply.headers.get("x-frame-options"), path).toBe("DENY");
      expect(reply.headers.get("x-content-type-options"), path).toBe("nosniff");
      expect(reply.headers.get("strict-transport-security"), path).toContain("max-age=");
    }
    const config = (await (await fetch(`${hostedAppUrl}/config.json`)).json()) as Record<
      string,
      unknown
    >;
    expect(config).toMatchObject({ apiBaseUrl: baseUrl, socketUrl });
  });

  it("signs in, buys a pack and follows the live balance with no CSP violation", async () => {
    const hosted = await openHosted();
    const { page } = hosted;
    await page.goto("/sign-in?next=/pricing");
    await page.getByLabel("Customer id").fill(customer);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.waitForURL("**/pricing");
    await expect.poll(() => page.getByTestId("signed-in-as").textContent()).toBe(customer);

    await page.getByRole("button", { name: "Buy Starter", exact: true }).click();
    await page.waitForURL(/\/_local\/checkout\/[\w-]+$/); // the dev server's offline Stripe
    await page.getByRole("button", { name: "Pay" }).click();
    await page.waitForURL(`${hostedAppUrl}/checkout/success?**`);
    await expect
      .poll(() => page.getByTestId("order-status").getAttribute("data-status"), { timeout: 20_000 })
      .toBe("paid");
    await page.getByRole("link", { name: "Go to your dashboard" }).click();
    await expect.poll(() => available(page)).toBe("2,000");
    // A blocked socket stays "connecting": show the violation instead, when there is one.
    await expect
      .poll(
        () =>
          hosted.violations.length > 0
            ? hosted.violations.join("\n")
            : page.getByTestId("live-status").getAttribute("data-status"),
        { timeout: 10_000 },
      )
      .toBe("live");

    await invokeDebit(baseUrl, {
      customer_id: customer,
      idempotency_key: `e2e-hosted-${randomUUID()}`,
      usage: [{ action: "vm_runtime", quantity: 25 }],
    });
    // The socket brings it: the pages poll only every 15 s.
    await expect.poll(() => available(page), { timeout: 2_000, interval: 100 }).toBe("1,975");
    expect(await page.getByTestId("live-status").getAttribute("data-status")).toBe("live");
    expect(hosted.violations).toEqual([]);
    expect(hosted.pageErrors).toEqual([]);
  });
});
