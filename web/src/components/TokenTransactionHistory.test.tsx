import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { fakeApi } from "../test/fakeApi";
import { transaction } from "../test/fixtures";
import { renderWithClient } from "../test/render";
import { TokenTransactionHistory } from "./TokenTransactionHistory";

const HISTORY = "GET /api/v1/customers/cust_a/tokens/transactions";

describe("TokenTransactionHistory", () => {
  it("pages with next_cursor on Load more", async () => {
    let failNext = true;
    const api = fakeApi({
      [HISTORY]: (request) => {
        if (!request.query.get("cursor")) {
          return {
            json: {
              object: "list",
              data: [
                transaction("txn_3"),
                transaction("txn_2", {
                  kind: "purchase",
                  amount: "6500",
                  amount_mt: 6500000,
                  usage_by_action: null,
                  package_id: "growth",
                  order_id: "ord_1",
                }),
              ],
              has_more: true,
              next_cursor: "c1",
            },
          };
        }
        if (failNext) {
          failNext = false;
          return {
            status: 503,
            json: { error: { code: "service_unavailable", message: "busy", retryable: true } },
          };
        }
        return {
          json: {
            object: "list",
            data: [
              transaction("txn_1", {
                kind: "grant",
                amount: "1.5",
                amount_mt: 1500,
                usage_by_action: null,
                reason: "welcome",
              }),
            ],
            has_more: false,
            next_cursor: null,
          },
        };
      },
    });
    const user = userEvent.setup();
    renderWithClient(api.client, <TokenTransactionHistory customerId="cust_a" pageSize={2} />);
    const list = await screen.findByRole("list", { name: "Transactions, newest first" });
    expect(list.textContent).toContain("Growth pack");
    expect(list.textContent).toContain("+6,500");
    const first = api.requests.find((request) => request.path.endsWith("/transactions"));
    expect(first?.query.get("limit")).toBe("2");

    await user.click(screen.getByRole("button", { name: "Load more" }));
    expect((await screen.findByRole("alert")).textContent).toContain("The billing service is busy");
    await user.click(screen.getByRole("button", { name: "Try again" }));
    await waitFor(() => expect(screen.getAllByRole("listitem")).toHaveLength(3));
    expect(api.requests.at(-1)?.query.get("cursor")).toBe("c1");
    expect(screen.getByRole("list", { name: "Transactions, newest first" }).textContent).toContain(
      "welcome",
    );
    expect(screen.queryByRole("button", { name: "Load more" })).toBeNull();
  });

  it("says so when there are no transactions", async () => {
    const api = fakeApi({
      [HISTORY]: { json: { object: "list", data: [], has_more: false, next_cursor: null } },
    });
    renderWithClient(api.client, <TokenTransactionHistory customerId="cust_a" />);
    expect(await screen.findByText("No transactions yet.")).toBeTruthy();
  });
});
