// Auto top-up in headless Chromium, the demo app on another origin than the API (as the
// hosted app on CloudFront is): save a test card through the offline checkout, turn auto
// top-up on (with its consent: the settings' PUT crosses origins), debit below the
// threshold through the Lambda Invoke API, and see the balance refilled, the debit in the
// history and the attempt listed, with no reload and no click. The whole loop runs on the
// dev server: ledger stream -> charger -> fake Stripe's off-session PaymentIntent -> signed
// payment_intent.succeeded -> webhook credit -> the live balance's socket.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { invokeDebit } from "./invoke";
import { DESKTOP, launchChromium, openPage, SCREENSHOTS, type TestPage } from "./browser";

const baseUrl = inject("baseUrl");
const appUrl = inject("appUrl");
const customer = `e2e_atu_${randomUUID().slice(0, 8)}`;

let browser: Browser;
let tab: TestPage;

async function signIn(page: Page, customerId: string, next = "/dashboard"): Promise<void> {
  await page.goto(`/sign-in?next=${encodeURIComponent(next)}`);
  await page.getByLabel("Customer id").fill(customerId);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL(`**${next}`);
  await expect.poll(() => page.getByTestId("signed-in-as").textContent()).toBe(customerId);
}

async function debit(quantity: number): Promise<void> {
  await invokeDebit(baseUrl, {
    customer_id: customer,
    idempotency_key: `e2e-${randomUUID()}`,
    usage: [{ action: "vm_runtime", quantity }],
  });
}

beforeAll(async () => {
  browser = await launchChromium();
  tab = await openPage(browser, appUrl, DESKTOP);
});

afterAll(async () => {
  await tab?.context.close().catch(() => undefined);
  await browser?.close();
});

describe("auto top-up, end to end", () => {
  it("saves a test card, turns auto top-up on, and refills the balance after a debit", async () => {
    const { page } = tab;
    await signIn(page, customer);
    const section = page.getByRole("region", { name: "Auto top-up" });
    await expect.poll(() => section.getByTestId("auto-top-up-state").textContent()).toBe("Off");

    // Save Stripe's test Visa through the offline checkout (a Starter pack: 2,000 tokens).
    await section.getByRole("button", { name: "Buy Starter and save the card" }).click();
    await page.waitForURL(/\/_local\/checkout\/[\w-]+$/);
    await page.getByLabel("Test card").selectOption("pm_card_visa");
    await page.getByRole("button", { name: "Pay" }).click();
    await page.waitForURL(/\/checkout\/success\?/);
    await expect
      .poll(() => page.getByTestId("order-status").getAttribute("data-status"), { timeout: 20_000 })
      .toBe("paid");
    await page.getByRole("link", { name: "Go to your dashboard" }).click();
    await expect.poll(() => page.getByTestId("available-tokens").textContent()).toBe("2,000");
    await expect
      .poll(() => section.getByTestId("auto-top-up-card").textContent())
      .toBe("Saved card: VISA •••• 4242");

    // Turn it on: Starter packs below 1,500 available tokens, at most $100 a month. The PUT
    // goes from the app's origin to the API's: the preflight must allow it.
    expect(new URL(page.url()).origin).not.toBe(new URL(baseUrl).origin);
    await section.getByRole("switch").check();
    expect(await section.getByTestId("auto-top-up-consent").textContent()).toContain("I authorise");
    await section.getByRole("combobox").selectOption("starter");
    await section.getByRole("textbox", { name: "Threshold in tokens" }).fill("1500");
    await section.getByRole("textbox", { name: "Monthly limit in dollars" }).fill("100");
    expect(await section.getByTestId("auto-top-up-terms").textContent()).toBe(
      "Your terms: Starter packs (2,000 tokens for $19 each) whenever available tokens fall " +
        "below 1,500; at most 2 charges a day and $100 a month.",
    );
    await section.getByRole("checkbox", { name: "I agree" }).check();
    await section.getByRole("button", { name: "Save auto top-up" }).click();
    await expect.poll(() => section.getByTestId("auto-top-up-state").textContent()).toBe("On");
    // Saved: the form shows the saved settings, with nothing left to agree to.
    await expect
      .poll(() => section.getByTestId("auto-top-up-saved").textContent())
      .toBe("Saved: auto top-up is on.");
    expect(await section.getByRole("switch").isChecked()).toBe(true);
    expect(await section.getByTestId("auto-top-up-consent").count()).toBe(0);
    expect(await section.getByRole("alert").count()).toBe(0);

    // Below the threshold: 2,000 -> 1,400 available. Target 3,500: 2 packs, one charge. No
    // reload and no click from here: the live balance brings it all.
    await expect
      .poll(() => page.getByTestId("live-status").getAttribute("data-status"), { timeout: 10_000 })
      .toBe("live");
    await page.evaluate(() => Object.assign(window, { e2eNoReload: true }));
    await debit(600);
    const history = page.getByRole("list", { name: "Transactions, newest first" });
    await expect
      .poll(() => history.locator("li").filter({ hasText: "VM runtime 600" }).count())
      .toBe(1);
    await expect
      .poll(() => page.getByTestId("available-tokens").textContent(), { timeout: 30_000 })
      .toBe("5,400");
    // The auto top-up's credit, on top of the history.
    await expect.poll(() => history.locator("li").first().textContent()).toContain("+4,000");
    const attempts = section.getByTestId("auto-top-up-attempts");
    await expect
      .poll(() => attempts.locator("li").first().getAttribute("data-status"))
      .toBe("succeeded");
    expect(await attempts.locator("li").first().textContent()).toContain("2 × Starter, $38");
    expect(await page.evaluate(() => "e2eNoReload" in window)).toBe(true);
    await page.screenshot({
      path: join(SCREENSHOTS, "auto-top-up-desktop.png"),
      fullPage: true,
      animations: "disabled",
    });
    expect(tab.pageErrors).toEqual([]);
  });
});
