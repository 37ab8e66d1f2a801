import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { fakeApi } from "../test/fakeApi";
import { balance } from "../test/fixtures";
import { renderWithClient } from "../test/render";
import { TokenBalanceCard } from "./TokenBalanceCard";

describe("TokenBalanceCard", () => {
  it("loads the balance itself when given a customer id", async () => {
    const api = fakeApi({
      "GET /api/v1/customers/cust_a/tokens": {
        json: balance({ balance: "1999.9", available: "1984.9", held: "15", low_balance: false }),
      },
    });
    renderWithClient(api.client, <TokenBalanceCard customerId="cust_a" />);
    expect(screen.getByRole("status").textContent).toContain("Loading your balance");
    expect((await screen.findByTestId("available-tokens")).textContent).toBe("1,984.9");
    expect(screen.getByTestId("balance-tokens").textContent).toBe("1,999.9");
  });

  it("marks a low balance", () => {
    const api = fakeApi({});
    renderWithClient(
      api.client,
      <TokenBalanceCard balance={balance({ available: "20", low_balance: true })} />,
    );
    expect(screen.getByText("Low balance (under 500 tokens)")).toBeTruthy();
    expect(api.requests).toHaveLength(0);
  });

  it("shows a network failure", async () => {
    const api = fakeApi({ "GET /api/v1/customers/cust_a/tokens": { fail: true } });
    renderWithClient(api.client, <TokenBalanceCard customerId="cust_a" />);
    expect((await screen.findByRole("alert")).textContent).toContain(
      "Cannot reach the billing service",
    );
  });
});
