// The Next.js example (web/examples/nextjs: the packed package installed into a Next.js App
// Router app with create-next-app's default Tailwind, served by `next start` on its own
// origin) against the dev server: sign in, buy the Growth pack through the offline
// checkout, see the tokens on its dashboard, live; the balance card and the history follow
// a debit on their own; and the components look as in the demo under Tailwind's preflight
// (computed styles of headings and inputs compared, screenshots at desktop and phone
// widths). Every API call crosses origins: the dev server's CORS as much as the package.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { Browser, Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DESKTOP, launchChromium, openPage, PHONE, SCREENSHOTS, type TestPage } from "./browser";
import { invokeDebit } from "./invoke";

const baseUrl = inject("baseUrl");
const appUrl = inject("appUrl");
const nextUrl = inject("nextUrl");
const deadApiUrl = inject("deadApiUrl");
const customer = `e2e_next_${randomUUID().slice(0, 8)}`;

let browser: Browser;
let tab: TestPage;
const consoleErrors: string[] = [];

async function available(page: Page): Promise<string | null> {
  return page.getByTestId("available-tokens").textContent();
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({
    path: join(SCREENSHOTS, `${name}.png`),
    fullPage: true,
    animations: "disabled",
  });
}

// What the components set for themselves: a heading's type and spacing, a form control's
// frame. Tailwind's preflight resets each of them to nothing in an unstyled element.
const HEADING = [
  "font-size",
  "font-weight",
  "line-height",
  "margin-top",
  "margin-bottom",
  "color",
] as const;
const CONTROL = [
  "border-top-width",
  "border-top-style",
  "border-top-color",
  "border-bottom-width",
  "border-radius",
  "padding-top",
  "padding-left",
  "min-height",
  "background-color",
  "color",
] as const;

async function computed(
  locator: Locator,
  properties: readonly string[],
): Promise<Record<string, string>> {
  return locator.evaluate((element, names) => {
    const style = getComputedStyle(element);
    return Object.fromEntries(names.map((name) => [name, style.getPropertyValue(name)]));
  }, properties);
}

/** The same component parts on a page of the demo app (no CSS framework) and of the
 * Next.js example (create-next-app's Tailwind): their computed styles must be equal. */
async function compareWithDemo(
  demo: Page,
  next: Page,
  parts: { name: string; pick: (page: Page) => Locator; properties: readonly string[] }[],
): Promise<Record<string, Record<string, string>>> {
  const seen: Record<string, Record<string, string>> = {};
  for (const { name, pick, properties } of parts) {
    const inDemo = await computed(pick(demo), properties);
    const inNext = await computed(pick(next), properties);
    expect(inNext, `${name}: the Next.js example's styles vs the demo's`).toEqual(inDemo);
    seen[name] = inNext;
  }
  return seen;
}

async function signInDemo(page: Page, customerId: string): Promise<void> {
  await page.goto("/sign-in?next=/dashboard");
  await page.getByLabel("Customer id").fill(customerId);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL("**/dashboard");
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

  it("allows every method the components send, the auto top-up's PUT included", async () => {
    const reply = await fetch(`${baseUrl}/api/v1/customers/${customer}/tokens/auto-top-up`, {
      method: "OPTIONS",
      headers: {
        Origin: nextUrl,
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization,content-type",
      },
    });
    expect(reply.status).toBe(204);
    const methods = (reply.headers.get("access-control-allow-methods") ?? "").split(",");
    expect(methods).toEqual(expect.arrayContaining(["GET", "POST", "PUT"]));
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
    // It was given the socket URL: live, not polling.
    await expect
      .poll(() => page.getByTestId("live-status").getAttribute("data-status"), { timeout: 10_000 })
      .toBe("live");
    await screenshot(page, "nextjs-dashboard-desktop");
    expect(tab.pageErrors).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });

  it("follows a debit in the balance card and the history beside it, with no reload", async () => {
    const { page } = tab;
    await page.getByRole("link", { name: "Activity" }).click();
    await page.waitForURL(`${nextUrl}/activity`);
    await expect.poll(() => available(page)).toBe("6,500");
    await expect
      .poll(() => page.getByTestId("live-status").getAttribute("data-status"), { timeout: 10_000 })
      .toBe("live");
    const history = page.getByRole("list", { name: "Transactions, newest first" });
    await expect.poll(() => history.locator("li").count()).toBe(1);
    await page.evaluate(() => Object.assign(window, { e2eNoReload: true }));
    await invokeDebit(baseUrl, {
      customer_id: customer,
      idempotency_key: `e2e-next-${randomUUID()}`,
      usage: [{ action: "vm_runtime", quantity: 50 }],
    });
    await expect.poll(() => available(page), { timeout: 5_000 }).toBe("6,450");
    await expect
      .poll(() => history.locator("li").first().textContent(), { timeout: 5_000 })
      .toContain("VM runtime 50");
    expect(await history.locator("li").count()).toBe(2);
    expect(await page.evaluate(() => "e2eNoReload" in window)).toBe(true);
    await screenshot(page, "nextjs-activity-desktop");
    expect(tab.pageErrors).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });

  it("looks as in the demo under Tailwind's preflight: headings and inputs keep their styles", async () => {
    const demoTab = await openPage(browser, appUrl, DESKTOP);
    try {
      const demo = demoTab.page;
      const { page } = tab;
      // The pricing page: its heading, a card's heading, the calculator's first input.
      // One page after the other: the dev server runs a function's handler in threads,
      // and Powertools' resolver is not safe to run twice at once (Lambda never does).
      for (const view of [demo, page]) {
        await view.goto("/pricing");
        await expect.poll(() => view.getByTestId("recommended-package").count()).toBe(1);
      }
      const pricing = await compareWithDemo(demo, page, [
        {
          name: "the page heading",
          pick: (view) => view.getByRole("heading", { name: "Token packs", level: 1 }),
          properties: HEADING,
        },
        {
          name: "a card heading",
          pick: (view) => view.getByRole("heading", { name: "How many tokens do you need?" }),
          properties: HEADING,
        },
        {
          name: "the calculator's input",
          pick: (view) => view.getByRole("textbox", { name: /VM runtime/ }),
          properties: CONTROL,
        },
      ]);
      expect(pricing["the page heading"]).toMatchObject({
        "font-size": "28px",
        "font-weight": "700",
        "margin-top": "0px",
      });
      expect(pricing["the calculator's input"]).toMatchObject({
        "border-top-width": "1px",
        "border-top-style": "solid",
      });

      // The dashboard: the auto top-up inputs (which lost their borders) and headings.
      await signInDemo(demo, `e2e_demo_${randomUUID().slice(0, 8)}`);
      await page.goto("/dashboard");
      for (const view of [demo, page]) {
        await expect.poll(() => view.getByTestId("auto-top-up-state").count()).toBe(1);
      }
      const autoTopUp = (view: Page) => view.getByRole("region", { name: "Auto top-up" });
      const dashboard = await compareWithDemo(demo, page, [
        {
          name: "the dashboard heading",
          pick: (view) => view.getByRole("heading", { name: "Your tokens", level: 1 }),
          properties: HEADING,
        },
        {
          name: "the auto top-up heading",
          pick: (view) => autoTopUp(view).getByRole("heading", { name: "Auto top-up" }),
          properties: HEADING,
        },
        {
          name: "the auto top-up threshold",
          pick: (view) => autoTopUp(view).getByRole("textbox", { name: "Threshold in tokens" }),
          properties: CONTROL,
        },
        {
          name: "the auto top-up pack menu",
          pick: (view) => autoTopUp(view).getByRole("combobox"),
          properties: CONTROL,
        },
      ]);
      expect(dashboard["the auto top-up threshold"]).toMatchObject({
        "border-top-width": "1px",
        "border-top-style": "solid",
      });
      expect(dashboard["the auto top-up heading"]).toMatchObject({ "font-weight": "700" });
      await screenshot(demo, "demo-dashboard-for-nextjs-desktop");
      expect(demoTab.pageErrors).toEqual([]);
    } finally {
      await demoTab.context.close();
    }
  });

  it("fits a phone: pricing and dashboard, no sideways scrolling", async () => {
    const phone = await openPage(browser, nextUrl, PHONE);
    try {
      const { page } = phone;
      await page.goto("/sign-in");
      await page.getByLabel("Customer id").fill(customer);
      await page.getByRole("button", { name: "Sign in", exact: true }).click();
      await page.waitForURL(`${nextUrl}/pricing`);
      await expect.poll(() => page.getByTestId("package-growth").count()).toBe(1);
      await expect.poll(() => page.getByTestId("recommended-package").count()).toBe(1);
      await screenshot(page, "nextjs-pricing-phone");
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
        PHONE.width,
      );
      await page.goto("/dashboard");
      await expect.poll(() => available(page)).toBe("6,450");
      await expect.poll(() => page.getByTestId("auto-top-up-state").count()).toBe(1);
      await screenshot(page, "nextjs-dashboard-phone");
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
        PHONE.width,
      );
      expect(phone.pageErrors).toEqual([]);
    } finally {
      await phone.context.close();
    }
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
    await expect.poll(() => available(page)).toBe("6,450");
    await page.goto("/pricing");
    await expect.poll(() => page.getByTestId("package-growth").count()).toBe(1);
    await screenshot(page, "nextjs-pricing-desktop");
    expect(tab.pageErrors).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
