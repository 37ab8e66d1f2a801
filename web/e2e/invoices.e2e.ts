// An invoice and a receipt for a purchase, in headless Chromium, the demo app on another
// origin than the API (as the hosted app on CloudFront is): buy Growth through the offline
// checkout with billing details, then open the invoice from the dashboard's order list in a
// new tab (the offline Stripe's hosted invoice page), and check its PDF and the receipt.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DESKTOP, launchChromium, openPage, SCREENSHOTS, type TestPage } from "./browser";

const baseUrl = inject("baseUrl");
const appUrl = inject("appUrl");
const customer = `e2e_inv_${randomUUID().slice(0, 8)}`;

let browser: Browser;
let tab: TestPage;

async function signIn(page: Page, customerId: string, next: string): Promise<void> {
  await page.goto(`/sign-in?next=${encodeURIComponent(next)}`);
  await page.getByLabel("Customer id").fill(customerId);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL(`**${next}`);
  await expect.poll(() => page.getByTestId("signed-in-as").textContent()).toBe(customerId);
}

beforeAll(async () => {
  browser = await launchChromium();
  tab = await openPage(browser, appUrl, DESKTOP);
});

afterAll(async () => {
  await tab?.context.close().catch(() => undefined);
  await browser?.close();
});

describe("invoices, end to end", () => {
  it("opens the invoice of a Growth purchase from the dashboard's order list", async () => {
    const { page, context } = tab;
    await signIn(page, customer, "/pricing");
    await page.getByRole("button", { name: "Buy Growth", exact: true }).click();
    await page.waitForURL(/\/_local\/checkout\/[\w-]+$/);
    await page.getByLabel("Name").fill("Katherine Johnson");
    await page.getByLabel("Email").fill("katherine@example.com");
    await page.getByLabel("Address").fill("1 Langley Road");
    await page.getByLabel("City").fill("Hampton");
    await page.getByLabel("Postal code").fill("23681");
    await page.getByLabel("Country").selectOption("US");
    await page.getByRole("button", { name: "Pay" }).click();
    await page.waitForURL(/\/checkout\/success\?/);
    await expect
      .poll(() => page.getByTestId("order-status").getAttribute("data-status"), { timeout: 20_000 })
      .toBe("paid");
    await page.getByRole("link", { name: "Go to your dashboard" }).click();

    const orders = page.getByRole("region", { name: "Recent orders" });
    const row = orders.getByRole("listitem").filter({ hasText: "Growth" });
    await expect.poll(() => row.getByRole("link", { name: "Invoice" }).count()).toBe(1);
    const number = (await row.locator(".tb-orders__documents .tb-muted").textContent()) ?? "";
    expect(number).toMatch(/^[A-Z0-9]{8}-0001$/);
    await page.screenshot({ path: join(SCREENSHOTS, "orders-with-invoice.png"), fullPage: true });

    // The link opens Stripe's page (here the offline one) in a new tab, off the app's origin.
    const [invoicePage] = await Promise.all([
      context.waitForEvent("page"),
      row.getByRole("link", { name: "Invoice" }).click(),
    ]);
    await invoicePage.waitForLoadState();
    expect(new URL(invoicePage.url()).origin).toBe(new URL(baseUrl).origin);
    expect(await invoicePage.getByRole("heading", { level: 1 }).textContent()).toBe("Invoice");
    const facts = (await invoicePage.locator("#facts").textContent()) ?? "";
    expect(facts).toContain(number);
    expect(facts).toContain("6,500");
    const billTo = (await invoicePage.locator("#bill-to").innerText()).split("\n");
    expect(billTo).toEqual([
      "Katherine Johnson",
      "katherine@example.com",
      "1 Langley Road",
      "23681 Hampton",
      "US",
    ]);
    expect(await invoicePage.locator("#lines").textContent()).toContain("$49.00");
    await invoicePage.close();

    // Its PDF and the card payment's receipt, as the links name them.
    const pdfHref = await row.getByRole("link", { name: "PDF" }).getAttribute("href");
    const pdf = await fetch(String(pdfHref));
    expect(pdf.headers.get("content-type")).toBe("application/pdf");
    expect(
      Buffer.from(await pdf.arrayBuffer())
        .subarray(0, 5)
        .toString(),
    ).toBe("%PDF-");
    const receiptHref = await row.getByRole("link", { name: "Receipt" }).getAttribute("href");
    expect(await (await fetch(String(receiptHref))).text()).toContain("$49.00");
    expect(tab.pageErrors).toEqual([]);
  });
});
