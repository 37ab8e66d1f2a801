import { act, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { fakeApi } from "../test/fakeApi";
import { order } from "../test/fixtures";
import { renderWithClient } from "../test/render";
import { TokenCheckoutStatus } from "./TokenCheckout";

const ORDERS = "GET /api/v1/customers/cust_a/tokens/orders";

function page(...orders: ReturnType<typeof order>[]) {
  return { json: { object: "list", data: orders, has_more: false, next_cursor: null } };
}

/** Lets timers and the promises they start run. */
async function advance(ms: number): Promise<void> {
  await act(async () => {
    await vi.advanceTimersByTimeAsync(ms);
  });
}

describe("TokenCheckoutStatus", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("polls the orders until the webhook has credited the order", async () => {
    let polls = 0;
    const api = fakeApi({
      [ORDERS]: () => {
        polls += 1;
        return polls < 3 ? page(order("pending")) : page(order("paid"));
      },
    });
    renderWithClient(
      api.client,
      <TokenCheckoutStatus customerId="cust_a" orderId="ord_1" outcome="success" />,
    );
    await advance(0);
    expect(screen.getByTestId("order-status").dataset.status).toBe("pending");
    expect(screen.getByText("Waiting for the payment confirmation…")).toBeTruthy();
    await advance(2000);
    expect(screen.getByTestId("order-status").dataset.status).toBe("paid");
    expect(
      screen.getByText("Payment received: 6,500 tokens were added to your balance."),
    ).toBeTruthy();
    await advance(5000);
    expect(polls).toBe(3); // stops once paid
  });

  it("says it takes longer than usual after 20 s, then stops and offers to check again", async () => {
    const api = fakeApi({ [ORDERS]: page(order("pending")) });
    renderWithClient(
      api.client,
      <TokenCheckoutStatus
        customerId="cust_a"
        orderId="ord_1"
        outcome="success"
        giveUpAfterMs={30_000}
      />,
    );
    await advance(19_000);
    expect(screen.queryByText(/taking longer than usual/)).toBeNull();
    await advance(2_000);
    expect(screen.getByText(/taking longer than usual/)).toBeTruthy();
    await advance(10_000);
    const requests = api.requests.length;
    await advance(5_000);
    expect(api.requests.length).toBe(requests);
    expect(screen.getByRole("button", { name: "Check again" })).toBeTruthy();
  });

  it("shows a cancelled checkout's order without waiting for a payment", async () => {
    const api = fakeApi({ [ORDERS]: page(order("paid", { id: "ord_0" }), order("pending")) });
    renderWithClient(
      api.client,
      <TokenCheckoutStatus customerId="cust_a" orderId="ord_1" outcome="cancel" />,
    );
    await advance(0);
    expect(screen.getByRole("heading", { name: "Checkout cancelled" })).toBeTruthy();
    expect(screen.getByText(/You were not charged/)).toBeTruthy();
    expect(screen.getByTestId("order-status").textContent).toBe("Not paid: checkout cancelled");
    expect(screen.queryByText("Awaiting payment")).toBeNull();
    await advance(5000);
    expect(api.requests).toHaveLength(1);
  });

  it("says an unknown order is not found, not that a payment may still be processing", async () => {
    const api = fakeApi({ [ORDERS]: page(order("paid", { id: "ord_0" })) });
    renderWithClient(
      api.client,
      <TokenCheckoutStatus customerId="cust_a" orderId="ord_nope" outcome="success" />,
    );
    await advance(0);
    expect(screen.getByText("Looking for your order…")).toBeTruthy();
    await advance(21_000);
    expect(screen.getByTestId("order-not-found").textContent).toContain(
      "We could not find order ord_nope among your recent orders.",
    );
    expect(screen.queryByText(/payment may still be processing/)).toBeNull();
    const requests = api.requests.length;
    await advance(10_000);
    expect(api.requests.length).toBe(requests); // stopped looking
    expect(screen.getByRole("button", { name: "Check again" })).toBeTruthy();
  });

  it("shows an error when the orders cannot be read", async () => {
    const api = fakeApi({ [ORDERS]: { status: 401, json: { message: "Unauthorized" } } });
    renderWithClient(
      api.client,
      <TokenCheckoutStatus customerId="cust_a" orderId="ord_1" outcome="success" />,
    );
    await advance(0);
    expect(screen.getByRole("alert").textContent).toContain(
      "Could not check your order: Please sign in again",
    );
  });

  it("explains a link without an order id", () => {
    const api = fakeApi({});
    renderWithClient(
      api.client,
      <TokenCheckoutStatus customerId="cust_a" orderId={null} outcome="success" />,
    );
    expect(screen.getByRole("alert").textContent).toContain("no order id");
    expect(api.requests).toHaveLength(0);
  });
});
