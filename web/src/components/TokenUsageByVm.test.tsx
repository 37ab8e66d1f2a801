import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { UsageByVm } from "../api/client";
import { fakeApi } from "../test/fakeApi";
import { renderWithClient } from "../test/render";
import { TokenUsageByVm } from "./TokenUsageByVm";

const USAGE = "GET /api/v1/customers/cust_a/tokens/usage";

function vm(vmId: string | null, usedMt: number, limitMt: number | null, atLimit = false) {
  const tokens = (mt: number) => String(mt / 1000);
  return {
    vm_id: vmId,
    used: tokens(usedMt),
    used_mt: usedMt,
    daily_limit: limitMt === null ? null : tokens(limitMt),
    daily_limit_mt: limitMt,
    used_today: tokens(atLimit && limitMt !== null ? limitMt : 0),
    used_today_mt: atLimit && limitMt !== null ? limitMt : 0,
    at_limit: atLimit,
  };
}

function usageByVm(overrides: Partial<UsageByVm> = {}): UsageByVm {
  return {
    object: "token_usage_by_vm",
    customer_id: "cust_a",
    group_by: "vm",
    period_start: "2026-11-30",
    period_end: "2026-12-01",
    total: "1350",
    total_mt: 1350000,
    vm_count: 3,
    top_vms: [vm("vm-build", 1200000, 100000, true), vm("vm-7", 100000, null)],
    days: [
      {
        day: "2026-11-30",
        total: "1100",
        total_mt: 1100000,
        top_vms: [{ vm_id: "vm-build", used: "1100", used_mt: 1100000 }],
        other: "0",
        other_mt: 0,
      },
      {
        day: "2026-12-01",
        total: "250",
        total_mt: 250000,
        top_vms: [
          { vm_id: "vm-build", used: "100", used_mt: 100000 },
          { vm_id: "vm-7", used: "100", used_mt: 100000 },
        ],
        other: "50",
        other_mt: 50000,
      },
    ],
    ...overrides,
  };
}

describe("TokenUsageByVm", () => {
  it("ranks the VMs, marks one at its daily limit and stacks each day", async () => {
    const api = fakeApi({ [USAGE]: { json: usageByVm() } });
    renderWithClient(api.client, <TokenUsageByVm customerId="cust_a" days={2} top={2} />);
    const list = await screen.findByRole("list", { name: "Top VMs by tokens used" });
    const rows = within(list).getAllByTestId("vm-usage-row");
    expect(rows.map((row) => row.dataset.vmId)).toEqual(["vm-build", "vm-7"]);
    expect(rows.map((row) => row.dataset.atLimit)).toEqual(["true", "false"]);
    expect(rows[0]?.textContent).toContain("At its daily limit");
    expect(rows[0]?.textContent).toContain("1,200 tokens · today 100 of 100");
    expect(rows[1]?.textContent).not.toContain("today");
    expect(screen.getByTestId("vm-usage-summary").textContent).toContain(
      "1,350 tokens from 2026-11-30 to 2026-12-01, across 3 VMs",
    );
    const days = screen.getByTestId("vm-usage-days");
    expect(days.querySelectorAll("[data-day]")).toHaveLength(2);
    expect(days.querySelector('[data-day="2026-12-01"]')?.children).toHaveLength(3); // + other
    const request = api.requests[0];
    expect(request?.query.get("group_by")).toBe("vm");
    expect([request?.query.get("days"), request?.query.get("top")]).toEqual(["2", "2"]);
  });

  it("says when nothing was used", async () => {
    const empty = usageByVm({ vm_count: 0, top_vms: [], total: "0", total_mt: 0, days: [] });
    const api = fakeApi({ [USAGE]: { json: empty } });
    renderWithClient(api.client, <TokenUsageByVm customerId="cust_a" />);
    expect((await screen.findByText(/No usage from/)).textContent).toContain("2026-11-30");
  });

  it("shows a refused read as an error", async () => {
    const api = fakeApi({
      [USAGE]: {
        status: 403,
        json: { error: { code: "forbidden", message: "no", retryable: false } },
      },
    });
    renderWithClient(api.client, <TokenUsageByVm customerId="cust_a" />);
    expect((await screen.findByRole("alert")).textContent).toContain("Could not load usage by VM");
  });
});
