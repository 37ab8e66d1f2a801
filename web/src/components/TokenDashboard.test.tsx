import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { fakeApi } from "../test/fakeApi";
import { balance, dashboard, HOLD, transaction } from "../test/fixtures";
import { renderWithClient } from "../test/render";
import { TokenDashboard } from "./TokenDashboard";

const DASHBOARD = "GET /api/v1/customers/cust_a/dashboard";
const HISTORY = "GET /api/v1/customers/cust_a/tokens/transactions";

describe("TokenDashboard", () => {
  it("shows balance, hours, holds, quick purchases, usage and orders", async () => {
    const api = fakeApi({
      [DASHBOARD]: {
        json: dashboard({
          balance: balance({
            balance: "6400",
            held: "15",
            held_mt: 15000,
            available: "6385",
            available_mt: 6385000,
            estimated_hours_remaining: 63,
            active_holds: [HOLD],
          }),
        }),
      },
      [HISTORY]: {
        json: { object: "list", data: [transaction("txn_2")], has_more: false, next_cursor: null },
      },
    });
    renderWithClient(api.client, <TokenDashboard customerId="cust_a" />);
    expect(await screen.findByTestId("available-tokens")).toHaveProperty("textContent", "6,385");
    expect(screen.getByTestId("balance-tokens").textContent).toBe("6,400");
    expect(screen.getByTestId("estimated-hours").textContent).toBe("≈ 63 hours");
    expect(screen.queryByTestId("low-balance-warning")).toBeNull();
    const holds = screen.getByRole("region", { name: "Reserved by running VMs" });
    expect(within(holds).getByTestId("held-tokens").textContent).toBe("15");
    expect(within(holds).getByRole("cell", { name: "vm-42" })).toBeTruthy();
    const topUp = screen.getByRole("region", { name: "Top up" });
    expect(
      within(topUp).getByRole("button", { name: "Buy Growth: 6,500 tokens for $49" }),
    ).toBeTruthy();
    const usage = screen.getByRole("region", { name: "Usage in the last 30 days" });
    expect(within(usage).getByText("VM runtime")).toBeTruthy();
    expect(within(usage).getByText("2.5 tokens")).toBeTruthy();
    expect(screen.getByRole("region", { name: "Recent orders" }).textContent).toContain("Paid");
    const history = await screen.findByRole("list", { name: "Transactions, newest first" });
    expect(history.textContent).toContain("VM runtime 100");
    expect(history.textContent).toContain("-100");
  });

  it("warns under 500 available tokens", async () => {
    const api = fakeApi({
      [DASHBOARD]: {
        json: dashboard({
          balance: balance({
            balance: "450",
            available: "450",
            available_mt: 450000,
            low_balance: true,
            estimated_hours_remaining: 4,
          }),
        }),
      },
      [HISTORY]: { json: { object: "list", data: [], has_more: false, next_cursor: null } },
    });
    renderWithClient(api.client, <TokenDashboard customerId="cust_a" />);
    const warning = await screen.findByTestId("low-balance-warning");
    expect(warning.textContent).toContain("Low balance: 450 tokens available, under 500");
    expect(warning.getAttribute("role")).toBe("alert");
    expect(warning.textContent).not.toContain("VMs"); // no VM is running
    expect(screen.getAllByText(/Low balance/)).toHaveLength(1); // one warning, not two
  });

  it("greets a new customer once, with no low-balance warning and no word of VMs", async () => {
    const api = fakeApi({
      [DASHBOARD]: {
        json: dashboard({
          balance: balance({
            balance: "0",
            balance_mt: 0,
            available: "0",
            available_mt: 0,
            lifetime_purchased: "0",
            lifetime_purchased_mt: 0,
            lifetime_bonus: "0",
            lifetime_bonus_mt: 0,
            lifetime_used: "0",
            lifetime_used_mt: 0,
            low_balance: true,
            estimated_hours_remaining: 0,
          }),
        }),
      },
      [HISTORY]: { json: { object: "list", data: [], has_more: false, next_cursor: null } },
    });
    renderWithClient(api.client, <TokenDashboard customerId="cust_a" />);
    const notice = await screen.findByTestId("new-account-notice");
    expect(notice.textContent).toContain("No tokens yet.");
    expect(screen.queryByTestId("low-balance-warning")).toBeNull();
    expect(screen.queryByText(/Low balance/)).toBeNull();
    expect(screen.queryByText(/VMs running/)).toBeNull();
  });

  it("shows a refused account as an error and none of its data", async () => {
    const api = fakeApi({
      [DASHBOARD]: {
        status: 403,
        json: {
          error: { code: "forbidden", message: "You may not read this customer", retryable: false },
        },
      },
    });
    renderWithClient(api.client, <TokenDashboard customerId="cust_a" />);
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain(
      "Could not load your dashboard: You don't have access to this account",
    );
    expect(screen.queryByTestId("available-tokens")).toBeNull();
    // Nothing but the dashboard (and the live balance's poll, refused alike).
    const asked = api.requests.map((request) => request.path);
    expect(asked.filter((path) => !path.endsWith("/tokens"))).toEqual([
      "/api/v1/customers/cust_a/dashboard",
    ]);
  });

  it("asks to sign in again on API Gateway's 401", async () => {
    const api = fakeApi({ [DASHBOARD]: { status: 401, json: { message: "Unauthorized" } } });
    renderWithClient(api.client, <TokenDashboard customerId="cust_a" />);
    expect((await screen.findByRole("alert")).textContent).toContain("Please sign in again");
  });

  it("loads again on Refresh, history included", async () => {
    let available = "6400";
    const api = fakeApi({
      [DASHBOARD]: () => ({ json: dashboard({ balance: balance({ available }) }) }),
      [HISTORY]: { json: { object: "list", data: [], has_more: false, next_cursor: null } },
    });
    const user = userEvent.setup();
    renderWithClient(api.client, <TokenDashboard customerId="cust_a" />);
    expect((await screen.findByTestId("available-tokens")).textContent).toBe("6,400");
    available = "6300";
    await user.click(screen.getByRole("button", { name: "Refresh the dashboard" }));
    await waitFor(() => expect(screen.getByTestId("available-tokens").textContent).toBe("6,300"));
    await waitFor(() =>
      expect(api.requests.filter((request) => request.path.endsWith("/transactions"))).toHaveLength(
        2,
      ),
    );
  });
});
