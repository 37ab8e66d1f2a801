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

  it("after saving, shows the saved settings as they are: on, nothing to agree to again", async () => {
    let current = autoTopUp({ card: VISA });
    const api = fakeApi({
      ...PACKS,
      [`GET ${ROUTE}`]: () => ({ json: current }),
      [`PUT ${ROUTE}`]: (request) => {
        const body = request.body as { max_charges_per_day: number; max_cents_per_month: number };
        current = autoTopUp({
          card: VISA,
          enabled: true,
          state: "active",
          package_id: "starter",
          threshold: "1500",
          max_charges_per_day: body.max_charges_per_day,
          max_cents_per_month: body.max_cents_per_month,
        });
        return { json: current };
      },
    });
    const user = userEvent.setup();
    renderWithClient(api.client, <TokenAutoTopUp customerId="cust_a" />);
    await user.click(await screen.findByRole("switch"));
    await user.clear(screen.getByRole("textbox", { name: "Threshold in tokens" }));
    await user.type(screen.getByRole("textbox", { name: "Threshold in tokens" }), "1500");
    await user.clear(screen.getByRole("textbox", { name: "Charges a day at most" }));
    await user.type(screen.getByRole("textbox", { name: "Charges a day at most" }), "3");
    await user.type(screen.getByRole("textbox", { name: "Monthly limit in dollars" }), "100");
    // The consent comes first, then what is missing: "above", where it is.
    expect(screen.getByText("Agree to the terms above to turn it on.")).toBeTruthy();
    expect(screen.getByTestId("auto-top-up-terms").textContent).toBe(
      "Your terms: Starter packs (2,000 tokens for $19 each) whenever available tokens fall " +
        "below 1,500; at most 3 charges a day and $100 a month.",
    );
    await user.click(screen.getByRole("checkbox", { name: "I agree" }));
    await user.click(screen.getByRole("button", { name: "Save auto top-up" }));

    await waitFor(() => expect(screen.getByTestId("auto-top-up-state").textContent).toBe("On"));
    expect(api.requests.find((r) => r.method === "PUT")?.body).toMatchObject({
      max_charges_per_day: 3,
      max_cents_per_month: 10000,
    });
    expect(screen.getByTestId("auto-top-up-saved").textContent).toBe("Saved: auto top-up is on.");
    expect(screen.queryByTestId("auto-top-up-consent")).toBeNull();
    expect(screen.queryByText(/to turn it on/)).toBeNull();
    expect(screen.getByRole("switch")).toHaveProperty("checked", true);
    expect(screen.getByRole("button", { name: "Save auto top-up" })).toHaveProperty(
      "disabled",
      true,
    );

    // A change while on asks for the consent again, for these terms.
    await user.clear(screen.getByRole("textbox", { name: "Monthly limit in dollars" }));
    await user.type(screen.getByRole("textbox", { name: "Monthly limit in dollars" }), "200");
    expect(screen.getByTestId("auto-top-up-consent")).toBeTruthy();
    expect(screen.getByText("Agree to the terms above to save these changes.")).toBeTruthy();
  });

  it("says the API refused this page's origin, not the connection, when CORS blocks the save", async () => {
    const api = fakeApi({
      ...PACKS,
      [`GET ${ROUTE}`]: { json: autoTopUp({ card: VISA }) },
      [`PUT ${ROUTE}`]: { fail: true }, // the browser refused the preflight
    });
    const user = userEvent.setup();
    renderWithClient(api.client, <TokenAutoTopUp customerId="cust_a" />);
    await user.click(await screen.findByRole("switch"));
    await user.type(screen.getByRole("textbox", { name: "Monthly limit in dollars" }), "100");
    await user.click(screen.getByRole("checkbox", { name: "I agree" }));
    await user.click(screen.getByRole("button", { name: "Save auto top-up" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain(
      "Could not save auto top-up: The billing service does not accept requests from this page",
    );
    expect(alert.textContent).toContain("does not allow PUT requests from http://localhost:3000");
    expect(alert.textContent).not.toContain("Check your connection");
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
              recovery_error: null,
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
