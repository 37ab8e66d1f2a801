// Per-VM daily limits and usage by VM (issue 25) in headless Chromium against the real dev
// server: the customer sets a default and a per-VM limit on the dashboard, two VMs spend
// through the Lambda Invoke API (each with its own credential), the VM that reaches its
// limit is refused `vm_limit_reached`, and the dashboard's usage by VM (from the ledger
// stream's aggregates) shows both VMs with the limited one marked. An admin token may lower
// the limits but not raise them.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { agentCredential } from "./invoke";
import { DESKTOP, launchChromium, openPage, SCREENSHOTS, type TestPage } from "./browser";

const baseUrl = inject("baseUrl");
const customer = `e2e_vm_${randomUUID().slice(0, 8)}`;

let browser: Browser;
let tab: TestPage;

async function token(body: Record<string, unknown>): Promise<string> {
  const reply = await fetch(`${baseUrl}/_local/identity/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(reply.status).toBe(200);
  return ((await reply.json()) as { token: string }).token;
}

async function signIn(page: Page, customerId: string): Promise<void> {
  await page.goto(`/sign-in?next=${encodeURIComponent("/dashboard")}`);
  await page.getByLabel("Customer id").fill(customerId);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL("**/dashboard");
  await expect.poll(() => page.getByTestId("signed-in-as").textContent()).toBe(customerId);
}

/** `quantity` minutes of one VM through the Invoke API, with that VM's own credential: the
 * reply, whether the service accepted or refused it. */
async function debit(vmId: string, quantity: number): Promise<Record<string, unknown>> {
  const credential = await agentCredential(baseUrl, customer, vmId);
  const reply = await fetch(`${baseUrl}/2015-03-31/functions/DebitFunction/invocations`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      customer_id: customer,
      idempotency_key: `e2e-${randomUUID()}`,
      usage: [{ action: "vm_runtime", quantity, vm_id: vmId }],
      credential,
    }),
  });
  expect(reply.status).toBe(200);
  return (await reply.json()) as Record<string, unknown>;
}

async function putLimits(bearer: string, body: Record<string, unknown>): Promise<number> {
  const reply = await fetch(`${baseUrl}/api/v1/customers/${customer}/tokens/vm-limits`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${bearer}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return reply.status;
}

beforeAll(async () => {
  browser = await launchChromium();
  tab = await openPage(browser, baseUrl, DESKTOP);
});

afterAll(async () => {
  await tab?.context.close().catch(() => undefined);
  await browser?.close();
});

describe("per-VM daily limits and usage by VM, end to end", () => {
  it("sets limits on the dashboard, refuses the VM at its limit and marks it on the chart", async () => {
    const admin = await token({ admin: true });
    const grant = await fetch(`${baseUrl}/api/v1/customers/${customer}/tokens/grants`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${admin}`,
        "Content-Type": "application/json",
        "Idempotency-Key": `e2e-vm-${customer}`,
      },
      body: JSON.stringify({ amount: "5000", reason: "e2e vm limits" }),
    });
    expect(grant.status, await grant.clone().text()).toBe(201);

    const { page } = tab;
    await signIn(page, customer);
    const limits = page.getByRole("region", { name: "Daily limits per VM" });
    await limits.getByLabel("Default daily limit in tokens").fill("100");
    await limits.getByRole("button", { name: "Add a VM" }).click();
    await limits.getByLabel("VM id").fill("vm-small");
    await limits.getByLabel("Daily limit of vm-small in tokens").fill("30");
    await limits.getByRole("button", { name: "Save limits" }).click();
    await expect.poll(() => limits.getByTestId("vm-limits-saved").isVisible()).toBe(true);

    // vm-big spends its 100 a day and is refused the next token; vm-small spends 20.
    expect(await debit("vm-big", 60)).toMatchObject({ ok: true });
    expect(await debit("vm-big", 40)).toMatchObject({ ok: true });
    expect(await debit("vm-big", 1)).toMatchObject({
      ok: false,
      error: { code: "vm_limit_reached", retryable: false, limit: "100", spent_today: "100" },
    });
    expect(await debit("vm-small", 20)).toMatchObject({ ok: true });

    // The usage comes from the ledger stream's aggregates: refresh until it is there.
    const usage = page.getByRole("region", { name: "Usage by VM" });
    const rows = usage.getByTestId("vm-usage-row");
    const deadline = Date.now() + 30_000;
    while ((await rows.count()) < 2) {
      if (Date.now() > deadline) throw new Error("usage by VM never showed both VMs");
      await page.waitForTimeout(500);
      await page.getByRole("button", { name: "Refresh the dashboard" }).click();
    }
    expect(await rows.evaluateAll((all) => all.map((row) => row.dataset.vmId))).toEqual([
      "vm-big",
      "vm-small",
    ]);
    expect(await rows.first().getAttribute("data-at-limit")).toBe("true");
    expect(await rows.first().textContent()).toContain("At its daily limit");
    expect(await rows.nth(1).getAttribute("data-at-limit")).toBe("false");
    expect(await rows.nth(1).textContent()).toContain("today 20 of 30");
    expect(await usage.getByTestId("vm-usage-summary").textContent()).toContain("120 tokens");

    // Support may lower a limit, never raise one: nothing changed by the refused raise.
    expect(
      await putLimits(admin, { default_daily_limit: "200", limits: { "vm-small": "30" } }),
    ).toBe(403);
    expect(
      await putLimits(admin, { default_daily_limit: "90", limits: { "vm-small": "30" } }),
    ).toBe(200);
    await page.reload();
    await expect
      .poll(() => limits.getByLabel("Default daily limit in tokens").inputValue())
      .toBe("90");
    await page.screenshot({
      path: join(SCREENSHOTS, "vm-limits-desktop.png"),
      fullPage: true,
      animations: "disabled",
    });
    expect(tab.pageErrors).toEqual([]);
  });
});
