import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { fakeApi } from "../test/fakeApi";
import { autoTopUp, PACKAGES, VISA } from "../test/fixtures";
import { renderWithClient } from "../test/render";
import { TokenAutoTopUp } from "./TokenAutoTopUp";

const ROUTE = "/api/v1/customers/cust_a/tokens/auto-top-up";
const PACKS = { "GET /api/v1/token-packages": { json: PACKAGES } };

describe("TokenAutoTopUp", () => {
  it("offers to save a card first when there is none", async () => {
    const api = fakeApi({ ...PACKS, [`GET ${ROUTE}`]: { json: autoTopUp() } });
    renderWithClient(api.client, <TokenAutoTopUp customerId="cust_a" />);
    expect((await screen.findByTestId("auto-top-up-state")).textContent).toBe("Off");
    expect(screen.getByTestId("auto-top-up-card").textContent).toContain("No saved card");
    expect(screen.getByRole("button", { name: "Buy Starter and save the card" })).toBeTruthy();
    await userEvent.click(screen.getByRole("switch"));
    expect(screen.getByText("Save a card first.")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Save auto top-up" })).toHaveProperty(
      "disabled",
      true,
    );
  });

  it("enabling shows the consent text and sends its version with the settings", async () => {
    const saved = autoTopUp({ enabled: true, state: "active", card: VISA, package_id: "growth" });
    const api = fakeApi({
      ...PACKS,
      [`GET ${ROUTE}`]: { json: autoTopUp({ card: VISA }) },
      [`PUT ${ROUTE}`]: { json: saved },
    });
    renderWithClient(api.client, <TokenAutoTopUp customerId="cust_a" />);
    expect((await screen.findByTestId("auto-top-up-card")).textContent).toBe(
      "Saved card: VISA •••• 4242",
    );
    await userEvent.click(screen.getByRole("switch"));
    expect(screen.getByTestId("auto-top-up-consent").textContent).toContain("I authorise");
    await userEvent.selectOptions(screen.getByRole("combobox"), "growth");
    await userEvent.type(screen.getByRole("textbox", { name: "Monthly limit in dollars" }), "200");
    const saveButton = screen.getByRole("button", { name: "Save auto top-up" });
    expect(saveButton).toHaveProperty("disabled", true); // no consent yet
    await userEvent.click(screen.getByRole("checkbox", { name: "I agree" }));
    await userEvent.click(saveButton);
    await waitFor(() => expect(api.requests.some((r) => r.method === "PUT")).toBe(true));
    const put = api.requests.find((r) => r.method === "PUT");
    expect(put?.body).toEqual({
      enabled: true,
      package_id: "growth",
      threshold: "500",
      max_charges_per_day: 2,
      max_cents_per_month: 20000,
      consent_text_version: "2026-12-01",
    });
  });

  it("shows the needs-authentication state with its recovery button and the attempts", async () => {
    const followed: string[] = [];
    const api = fakeApi({
      ...PACKS,
      [`GET ${ROUTE}`]: {
        json: autoTopUp({
          enabled: true,
          state: "needs_authentication",
          paused_reason: "authentication_required",
          recovery_url: "https://checkout.example/cs_1",
          card: VISA,
          package_id: "starter",
          max_cents_per_month: 10000,
          attempts: [
            {
              object: "auto_top_up_attempt",
              id: "atu_cust_a_7",
              status: "authentication_required",
              order_id: "ord_1",
              package_id: "starter",
              packs: 2,
              amount_cents: 3800,
              currency: "usd",
              available: "420",
              available_mt: 420000,
              decline_code: "authentication_required",
              payment_intent_id: null,
              credited: false,
              created_at: "2026-12-01T09:00:00.000000Z",
              ended_at: "2026-12-01T09:00:01.000000Z",
            },
          ],
        }),
      },
    });
    renderWithClient(
      api.client,
      <TokenAutoTopUp customerId="cust_a" redirect={(url) => followed.push(url)} />,
    );
    expect((await screen.findByTestId("auto-top-up-state")).textContent).toBe(
      "Needs your confirmation",
    );
    const attempts = screen.getByTestId("auto-top-up-attempts");
    expect(attempts.textContent).toContain("Needs confirmation — 2 × Starter, $38");
    await userEvent.click(screen.getByRole("button", { name: "Confirm the payment" }));
    expect(followed).toEqual(["https://checkout.example/cs_1"]);
  });

  it("says why it is paused after repeated declines", async () => {
    const api = fakeApi({
      ...PACKS,
      [`GET ${ROUTE}`]: {
        json: autoTopUp({
          enabled: true,
          state: "paused",
          paused_reason: "declined_repeatedly",
          card: VISA,
        }),
      },
    });
    renderWithClient(api.client, <TokenAutoTopUp customerId="cust_a" />);
    expect((await screen.findByRole("alert")).textContent).toContain("declined 3 times in a row");
    expect(screen.getByRole("button", { name: "Save a new card (buy Starter)" })).toBeTruthy();
  });
});
