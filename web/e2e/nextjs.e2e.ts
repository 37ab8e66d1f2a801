// The Next.js example (web/examples/nextjs: the packed package installed into a Next.js App
// Router app, served by `next start` on its own origin) against the dev server: sign in,
// buy the Growth pack through the offline checkout, see the tokens on its dashboard. Every
// API call crosses origins, so this is the dev server's CORS as much as the package.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DESKTOP, launchChromium, openPage, SCREENSHOTS, type TestPage } from "./browser";

const baseUrl = inject("baseUrl");
const nextUrl = inject("nextUrl");
const deadApiUrl = inject("deadApiUrl");
const customer = `e2e_next_${randomUUID().slice(0, 8)}`;

let browser: Browser;
let tab: TestPage;
const consoleErrors: string[] = [];

async function available(page: Page): Promise<string | null> {
  return page.getByTestId("available-tokens").textContent();
}

beforeAll(async () => {
  browser = await launchChromium();
  tab = await openPage(browser, nextUrl, DESKTOP);
  // Hydration mismatches and refused cross-origin requests show up as console errors; a
  // failed request as the reply's status (by URL: the console's line names none).
  tab.page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      consoleErrors.push(message.text());
    }
  });
  tab.page.on("response", (response) => {
    // The browser asks the offline checkout page (the dev server) for a favicon it lacks.
    if (response.status() >= 400 && !response.url().endsWith("/favicon.ico")) {
      consoleErrors.push(`${response.status()} ${response.request().method()} ${response.url()}`);
    }
  });
});

afterAll(async () => {
  await tab?.context.close().catch(() => undefined);
  await browser?.close();
});

describe("the dev server's CORS for the example's origin", () => {
  it("answers a preflight from the example's origin as the stack's CORS configuration does", async () => {
    const reply = await fetch(`${baseUrl}/api/v1/customers/${customer}/tokens/purchase`, {
      method: "OPTIONS",
      headers: {
        Origin: nextUrl,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
      },
    });
    expect(reply.status).toBe(204);
    expect(reply.headers.get("access-control-allow-origin")).toBe(nextUrl);
    expect(reply.headers.get("access-control-allow-headers")).toBe(
      "authorization,content-type,idempotency-key",
    );
  });

  it("gives another origin no CORS headers", async () => {
    const reply = await fetch(`${baseUrl}/api/v1/token-packages`, {
      headers: { Origin: deadApiUrl },
    });
    expect(reply.status).toBe(200);
    expect(reply.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("the Next.js example", () => {
  it("prerenders the checkout return page around its search params", async () => {
    const html = await (await fetch(`${nextUrl}/checkout/success?order_id=x`)).text();
    expect(html).toContain("Loading your order…");
  });

  it("buys the Growth pack through the offline checkout and sees 6,500 tokens", async () => {
    const { page } = tab;
    await page.goto("/sign-in");
    await page.getByLabel("Customer id").fill(customer);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.waitForURL(`${nextUrl}/pricing`);
    await expect.poll(() => page.getByTestId("signed-in-as").textContent()).toBe(customer);

    await page.getByRole("button", { name: "Buy Growth", exact: true }).click();
    await page.waitForURL(`${baseUrl}/_local/checkout/**`);
    await expect.poll(() => page.locator("#package").textContent()).toBe("growth");
    await page.getByRole("button", { name: "Pay" }).click();

    await page.waitForURL(`${nextUrl}/checkout/success?**`);
    expect(new URL(page.url()).searchParams.get("order_id")).toBeTruthy();
    await expect
      .poll(() => page.getByTestId("order-status").getAttribute("data-status"), { timeout: 20_000 })
      .toBe("paid");
    expect(
      await page.getByRole("status").filter({ hasText: "Payment received" }).textContent(),
    ).toBe("Payment received: 6,500 tokens were added to your balance.");

    await page.getByRole("link", { name: "Go to your dashboard" }).click();
    await page.waitForURL(`${nextUrl}/dashboard`);
    await expect.poll(() => available(page)).toBe("6,500");
    expect(await page.getByRole("region", { name: "Recent orders" }).textContent()).toContain(
      "Paid",
    );
    await page.screenshot({
      path: join(SCREENSHOTS, "nextjs-dashboard-desktop.png"),
      fullPage: true,
      animations: "disabled",
    });
    expect(tab.pageErrors).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });

  it("shows a cancelled checkout on the example's cancel page", async () => {
    const { page } = tab;
    await page.goto("/pricing");
    await page.getByRole("button", { name: "Buy Starter", exact: true }).click();
    await page.waitForURL(`${baseUrl}/_local/checkout/**`);
    await page.getByRole("button", { name: "Cancel and go back" }).click();
    await page.waitForURL(`${nextUrl}/checkout/cancel?**`);
    await expect
      .poll(() => page.getByTestId("order-status").getAttribute("data-status"))
      .toBe("pending");
    expect(await page.getByRole("heading", { level: 2 }).first().textContent()).toBe(
      "Checkout cancelled",
    );
    await page.getByRole("link", { name: "Go to your dashboard" }).click();
    await expect.poll(() => available(page)).toBe("6,500");
    await page.goto("/pricing");
    await expect.poll(() => page.getByTestId("package-growth").count()).toBe(1);
    await page.screenshot({
      path: join(SCREENSHOTS, "nextjs-pricing-desktop.png"),
      fullPage: true,
      animations: "disabled",
    });
    expect(tab.pageErrors).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
