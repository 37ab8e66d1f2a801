// The web pages against the real dev server, in headless Chromium, the demo app served from
// another origin than the API (as the hosted app is): buy through the offline checkout,
// debit and hold through the Lambda Invoke API, the error states, and the layout.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { Browser, Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DESKTOP, launchChromium, openPage, PHONE, SCREENSHOTS, type TestPage } from "./browser";
import { invokeDebit as invokeDebitOp } from "./invoke";

const baseUrl = inject("baseUrl");
const appUrl = inject("appUrl");
const deadApiUrl = inject("deadApiUrl");
const run = randomUUID().slice(0, 8);
const customerA = `e2e_a_${run}`;
const customerB = `e2e_b_${run}`;

let browser: Browser;
const opened: TestPage[] = [];

async function open(viewport = DESKTOP): Promise<TestPage> {
  const opening = await openPage(browser, appUrl, viewport);
  opened.push(opening);
  return opening;
}

async function signIn(page: Page, customerId: string, next = "/dashboard"): Promise<void> {
  await page.goto(`/sign-in?next=${encodeURIComponent(next)}`);
  await page.getByLabel("Customer id").fill(customerId);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL(`**${next}`);
  await expect.poll(() => page.getByTestId("signed-in-as").textContent()).toBe(customerId);
}

async function mintToken(customerId: string): Promise<string> {
  const reply = await fetch(`${baseUrl}/_local/identity/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ customer_id: customerId }),
  });
  expect(reply.status).toBe(200);
  const { token } = (await reply.json()) as { token: string };
  return token;
}

async function mintAdminToken(): Promise<string> {
  const reply = await fetch(`${baseUrl}/_local/identity/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ admin: true }),
  });
  expect(reply.status).toBe(200);
  const { token } = (await reply.json()) as { token: string };
  return token;
}

/** The debit function through the Lambda Invoke API, as a VM agent calls it. */
function invokeDebit(payload: Record<string, unknown>): Promise<Record<string, unknown>> {
  return invokeDebitOp(baseUrl, payload);
}

function debit(quantity: number): Promise<Record<string, unknown>> {
  return invokeDebit({
    customer_id: customerA,
    idempotency_key: `e2e-${randomUUID()}`,
    usage: [{ action: "vm_runtime", quantity }],
  });
}

async function available(page: Page): Promise<string | null> {
  return page.getByTestId("available-tokens").textContent();
}

async function reloadDashboard(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Refresh the dashboard" }).click();
  await expect
    .poll(() => page.getByRole("button", { name: "Refresh the dashboard" }).textContent())
    .toBe("Refresh");
}

/** Refreshes the dashboard until `check` holds: usage by action comes from the ledger
 * stream's aggregates, a moment after the debit. */
async function refreshUntil(
  page: Page,
  check: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("the dashboard never showed it");
    await page.waitForTimeout(500);
    await reloadDashboard(page);
  }
}

/** How many lines a (short) element's text takes on screen. */
async function textLines(locator: Locator): Promise<number> {
  return locator.evaluate((element) => {
    const range = document.createRange();
    range.selectNodeContents(element);
    const tops = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
    return tops.size;
  });
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({
    path: join(SCREENSHOTS, `${name}.png`),
    fullPage: true,
    animations: "disabled",
  });
}

beforeAll(async () => {
  browser = await launchChromium();
});

afterAll(async () => {
  for (const { context } of opened) await context.close().catch(() => undefined);
  await browser?.close();
});

describe("the dev server serves the web app", () => {
  it("answers app routes with index.html and leaves API and dev paths alone", async () => {
    for (const path of ["/", "/dashboard", "/checkout/success?order_id=x", "/checkout/cancel"]) {
      const reply = await fetch(`${baseUrl}${path}`);
      expect(reply.status, path).toBe(200);
      expect(reply.headers.get("content-type"), path).toContain("text/html");
    }
    const api = await fetch(`${baseUrl}/api/v1/nowhere`);
    expect([api.status, await api.json()]).toEqual([404, { message: "Not Found" }]);
    expect((await fetch(`${baseUrl}/app-missing.js`)).status).toBe(404);
    expect((await fetch(`${baseUrl}/openapi.json`)).headers.get("content-type")).toContain(
      "application/json",
    );
    const refused = await fetch(`${baseUrl}/_local/identity/token`, { method: "POST", body: "{}" });
    expect(refused.status).toBe(400);
  });
});

describe("a customer's tokens, end to end", () => {
  let tab: TestPage;

  beforeAll(async () => {
    tab = await open(DESKTOP);
  });

  it("1. buys the Growth pack through the offline checkout and sees 6,500 tokens", async () => {
    const { page } = tab;
    await signIn(page, customerA, "/pricing");
    await page.getByRole("button", { name: "Buy Growth", exact: true }).click();
    await page.waitForURL(/\/_local\/checkout\/[\w-]+$/);
    await expect.poll(() => page.locator("#package").textContent()).toBe("growth");
    await page.getByRole("button", { name: "Pay" }).click();
    await page.waitForURL(/\/checkout\/success\?/);
    expect(new URL(page.url()).searchParams.get("order_id")).toBeTruthy();
    await expect
      .poll(() => page.getByTestId("order-status").getAttribute("data-status"), { timeout: 20_000 })
      .toBe("paid");
    expect(
      await page.getByRole("status").filter({ hasText: "Payment received" }).textContent(),
    ).toBe("Payment received: 6,500 tokens were added to your balance.");
    await page.getByRole("link", { name: "Go to your dashboard" }).click();
    await expect.poll(() => available(page)).toBe("6,500");
    expect(await page.getByRole("region", { name: "Recent orders" }).textContent()).toContain(
      "Paid",
    );
    expect(tab.pageErrors).toEqual([]);
  });

  it("shows a cancelled checkout's order on the cancel page", async () => {
    const { page } = tab;
    await page.goto("/pricing");
    await page.getByRole("button", { name: "Buy Starter", exact: true }).click();
    await page.waitForURL(/\/_local\/checkout\/[\w-]+$/);
    await page.getByRole("button", { name: "Cancel and go back" }).click();
    await page.waitForURL(/\/checkout\/cancel\?/);
    await expect
      .poll(() => page.getByTestId("order-status").getAttribute("data-status"))
      .toBe("pending");
    expect(await page.getByRole("heading", { level: 2 }).first().textContent()).toBe(
      "Checkout cancelled",
    );
    expect(await page.getByText("You were not charged").count()).toBe(1);
    await page.getByRole("link", { name: "Go to your dashboard" }).click();
    await expect.poll(() => available(page)).toBe("6,500");
  });

  it("2. shows a debit made through the debit function in the balance and the history", async () => {
    const { page } = tab;
    const result = await debit(100);
    expect(result).toMatchObject({ debited: "100" });
    await reloadDashboard(page);
    await expect.poll(() => available(page)).toBe("6,400");
    const history = page.getByRole("list", { name: "Transactions, newest first" });
    await expect
      .poll(() => history.locator("li").first().textContent())
      .toContain("VM runtime 100");
    expect(await history.locator("li").first().locator(".tb-history__amount").textContent()).toBe(
      "-100 tokens",
    );
    expect(await history.textContent()).toContain("+6,500");
    const usage = page.getByRole("region", { name: "Usage in the last 30 days" });
    await refreshUntil(page, async () =>
      ((await usage.textContent()) ?? "").includes("100 tokens"),
    );
    expect(await usage.getByText("VM runtime").count()).toBe(1);
  });

  it("3. warns once available tokens drop under 500", async () => {
    const { page } = tab;
    expect(await page.getByTestId("low-balance-warning").count()).toBe(0);
    await debit(5950);
    await reloadDashboard(page);
    await expect.poll(() => available(page)).toBe("450");
    expect(await page.getByTestId("low-balance-warning").textContent()).toContain(
      "Low balance: 450 tokens available, under 500",
    );
  });

  it("4. shows tokens reserved by a running VM's hold", async () => {
    const { page } = tab;
    const hold = await invokeDebit({
      op: "hold",
      customer_id: customerA,
      hold_id: `hold-${run}`,
      amount: 15,
      expires_in_s: 900,
      vm_id: "vm-e2e",
    });
    expect(hold).toMatchObject({ held: "15" });
    await reloadDashboard(page);
    const reserved = page.getByRole("region", { name: "Reserved by running VMs" });
    await expect.poll(() => reserved.getByTestId("held-tokens").textContent()).toBe("15");
    expect(await reserved.getByRole("cell", { name: "vm-e2e" }).count()).toBe(1);
    expect(await available(page)).toBe("435");
    expect(await page.getByTestId("balance-tokens").textContent()).toBe("450");
    expect(tab.pageErrors).toEqual([]);
  });

  it("takes screenshots of the dashboard and the pricing page, desktop and phone", async () => {
    const { page } = tab;
    await screenshot(page, "dashboard-desktop");
    await page.goto("/pricing");
    await expect
      .poll(() => page.getByTestId("package-growth").getAttribute("data-recommended"))
      .toBe("true");
    await screenshot(page, "pricing-desktop");

    const phone = await open(PHONE);
    await signIn(phone.page, customerA, "/dashboard");
    await expect.poll(() => available(phone.page)).toBe("435");
    await expect
      .poll(() => phone.page.getByRole("list", { name: "Transactions, newest first" }).count())
      .toBe(1);
    await screenshot(phone.page, "dashboard-phone");
    const width = await phone.page.evaluate(() => document.documentElement.scrollWidth);
    expect(width, "no sideways scrolling on a phone").toBeLessThanOrEqual(PHONE.width);
    // The header keeps the customer id and "Sign out" whole, each on one line.
    expect(await textLines(phone.page.getByTestId("signed-in-as"))).toBe(1);
    expect(await textLines(phone.page.getByRole("button", { name: "Sign out" }))).toBe(1);
    await phone.page.goto("/pricing");
    await expect
      .poll(() => phone.page.getByTestId("package-growth").getAttribute("data-recommended"))
      .toBe("true");
    await screenshot(phone.page, "pricing-phone");
    expect(
      await phone.page.evaluate(() => document.documentElement.scrollWidth),
    ).toBeLessThanOrEqual(PHONE.width);
    expect(phone.pageErrors).toEqual([]);
  });

  it("lays the dashboard out: cards apart, the pack menu uncut", async () => {
    const { page } = tab;
    await page.goto("/dashboard");
    await expect.poll(() => available(page)).toBe("435");
    const topUp = await page.getByRole("region", { name: "Top up" }).boundingBox();
    const autoTopUp = await page.getByRole("region", { name: "Auto top-up" }).boundingBox();
    expect(topUp && autoTopUp && autoTopUp.y - (topUp.y + topUp.height)).toBeGreaterThanOrEqual(8);
    const pack = page.getByRole("region", { name: "Auto top-up" }).getByRole("combobox");
    // The chosen option's text fits the menu (with room for its arrow).
    const room = await pack.evaluate((select: HTMLSelectElement) => {
      const context = document.createElement("canvas").getContext("2d");
      if (!context) return -1;
      context.font = getComputedStyle(select).font;
      const text = select.options[select.selectedIndex]?.text ?? "";
      return select.clientWidth - context.measureText(text).width;
    });
    expect(room, "the pack menu shows its whole text").toBeGreaterThan(24);
    expect(tab.pageErrors).toEqual([]);
  });

  it("5. keeps the first customer's data from a second customer", async () => {
    const tokenB = await mintToken(customerB);
    const direct = await fetch(`${baseUrl}/api/v1/customers/${customerA}/dashboard`, {
      headers: { Authorization: `Bearer ${tokenB}` },
    });
    expect(direct.status).toBe(403);
    expect(await direct.json()).toMatchObject({ error: { code: "forbidden" } });

    const other = await open(DESKTOP);
    await signIn(other.page, customerB, "/dashboard");
    await other.page.goto(`/dashboard?customer=${customerA}`);
    const alert = other.page.getByRole("alert");
    await expect.poll(() => alert.textContent()).toContain("You don't have access to this account");
    expect(await other.page.getByTestId("available-tokens").count()).toBe(0);
    await screenshot(other.page, "other-customer-desktop");
    const text = (await other.page.locator("main").textContent()) ?? "";
    expect(text).not.toContain("435");
    expect(text).not.toContain("vm-e2e");
    expect(other.pageErrors).toEqual([]);
  });
});

describe("the live balance over the WebSocket", () => {
  it("7. the dashboard's balance follows a debit through the Invoke API, with no reload or click", async () => {
    const customerC = `e2e_c_${run}`;
    const admin = await mintAdminToken();
    const grant = await fetch(`${baseUrl}/api/v1/customers/${customerC}/tokens/grants`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${admin}`,
        "Content-Type": "application/json",
        "Idempotency-Key": `e2e-live-${run}`,
      },
      body: JSON.stringify({ amount: "1000", reason: "e2e live balance" }),
    });
    expect(grant.status, await grant.clone().text()).toBe(201);

    const live = await open(DESKTOP);
    const { page } = live;
    await signIn(page, customerC, "/dashboard");
    await expect.poll(() => available(page)).toBe("1,000");
    await expect
      .poll(() => page.getByTestId("live-status").getAttribute("data-status"), { timeout: 10_000 })
      .toBe("live");
    // A mark on the window: a reload or a navigation would wipe it.
    await page.evaluate(() => Object.assign(window, { e2eLiveMark: true }));

    await invokeDebit({
      customer_id: customerC,
      idempotency_key: `e2e-live-${randomUUID()}`,
      usage: [{ action: "vm_runtime", quantity: 25 }],
    });
    // Well within the 15 s polling period: the socket brought it.
    await expect.poll(() => available(page), { timeout: 5_000 }).toBe("975");
    await invokeDebit({
      op: "hold",
      customer_id: customerC,
      hold_id: `hold-live-${run}`,
      amount: 600,
      expires_in_s: 900,
      vm_id: "vm-live",
    });
    await expect.poll(() => available(page), { timeout: 5_000 }).toBe("375");
    await expect.poll(() => page.getByTestId("low-balance-warning").count()).toBe(1);
    // The parts a message does not carry (the holds table, history) follow by one resync.
    await expect
      .poll(() => page.getByRole("cell", { name: "vm-live" }).count(), { timeout: 5_000 })
      .toBe(1); // within one throttled resync (2 s)
    expect(await page.evaluate(() => "e2eLiveMark" in window)).toBe(true);
    expect(await page.getByTestId("live-status").textContent()).toBe("Live");
    await screenshot(page, "dashboard-live-desktop");
    expect(live.pageErrors).toEqual([]);
  });
});

describe("when the API is down", () => {
  it("6. shows an error, not a blank page", async () => {
    const down = await open(DESKTOP);
    const { page, context } = down;
    await context.route("**/config.json", (route) =>
      route.fulfill({
        contentType: "application/json",
        body: JSON.stringify({ apiBaseUrl: deadApiUrl, identity: { provider: "local" } }),
      }),
    );
    await page.goto("/pricing");
    await expect
      .poll(() => page.getByRole("alert").first().textContent(), { timeout: 20_000 })
      .toContain("Could not load token packs: Cannot reach the billing service");
    expect(await page.getByRole("button", { name: "Try again" }).first().isVisible()).toBe(true);

    const token = await mintToken(customerA);
    await page.evaluate((value) => sessionStorage.setItem("token-billing.token", value), token);
    await page.goto("/dashboard");
    await expect
      .poll(() => page.getByRole("alert").first().textContent(), { timeout: 20_000 })
      .toContain("Could not load your dashboard: Cannot reach the billing service");
    await screenshot(page, "api-down-desktop");
    expect(down.pageErrors).toEqual([]);
  });
});
