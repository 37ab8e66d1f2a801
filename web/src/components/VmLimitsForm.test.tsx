import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import type { VmLimits } from "../api/client";
import { fakeApi } from "../test/fakeApi";
import { renderWithClient } from "../test/render";
import { VmLimitsForm } from "./VmLimitsForm";

const ROUTE = "/api/v1/customers/cust_a/tokens/vm-limits";

function limits(overrides: Partial<VmLimits> = {}): VmLimits {
  return {
    object: "vm_limits",
    customer_id: "cust_a",
    default_daily_limit: null,
    default_daily_limit_mt: null,
    limits: {},
    limits_mt: {},
    max_named_vms: 1000,
    takes_effect_within_s: 60,
    version: 0,
    updated_at: null,
    updated_by: null,
    ...overrides,
  };
}

describe("VmLimitsForm", () => {
  it("sets a default and a per-VM limit as exact decimal strings", async () => {
    const api = fakeApi({
      [`GET ${ROUTE}`]: { json: limits() },
      [`PUT ${ROUTE}`]: (request) => ({
        json: limits({ version: 1, ...(request.body as object) }),
      }),
    });
    const saved: VmLimits[] = [];
    const user = userEvent.setup();
    renderWithClient(
      api.client,
      <VmLimitsForm customerId="cust_a" onSaved={(value) => saved.push(value)} />,
    );
    await user.type(await screen.findByLabelText("Default daily limit in tokens"), "500");
    await user.click(screen.getByRole("button", { name: "Add a VM" }));
    await user.type(screen.getByLabelText("VM id"), "vm-7");
    await user.type(screen.getByLabelText("Daily limit of vm-7 in tokens"), "100.5");
    await user.click(screen.getByRole("button", { name: "Add a VM" }));
    await user.type(screen.getAllByLabelText("VM id")[1] as HTMLElement, "vm-build");
    await user.click(screen.getByRole("button", { name: "Save limits" }));
    await screen.findByTestId("vm-limits-saved");
    const put = api.requests.find((request) => request.method === "PUT");
    expect(put?.body).toEqual({
      default_daily_limit: "500",
      limits: { "vm-7": "100.5", "vm-build": null },
    });
    expect(saved).toHaveLength(1);
  });

  it("refuses bad input before sending anything", async () => {
    const api = fakeApi({ [`GET ${ROUTE}`]: { json: limits() } });
    const user = userEvent.setup();
    renderWithClient(api.client, <VmLimitsForm customerId="cust_a" />);
    await user.type(await screen.findByLabelText("Default daily limit in tokens"), "1.0001");
    await user.click(screen.getByRole("button", { name: "Add a VM" }));
    await user.type(screen.getByLabelText("VM id"), "vm#1");
    expect(screen.getByRole("button", { name: "Save limits" })).toHaveProperty("disabled", true);
    expect(screen.getByText(/default limit must be a number/)).toBeTruthy();
    expect(screen.getByText('"vm#1" is not a VM id.')).toBeTruthy();
    expect(api.requests.filter((request) => request.method === "PUT")).toHaveLength(0);
  });

  it("shows why the API refused a change (an admin raising a limit)", async () => {
    const message =
      "only the customer may raise or remove a VM limit; an admin may lower them (this change raises: vm-7); nothing was changed";
    const api = fakeApi({
      [`GET ${ROUTE}`]: {
        json: limits({
          limits: { "vm-7": "100" },
          limits_mt: { "vm-7": 100000 },
          version: 1,
          updated_at: "2026-12-01T10:00:00Z",
        }),
      },
      [`PUT ${ROUTE}`]: {
        status: 403,
        json: { error: { code: "forbidden", message, retryable: false } },
      },
    });
    const user = userEvent.setup();
    renderWithClient(api.client, <VmLimitsForm customerId="cust_a" />);
    const limit = await screen.findByLabelText("Daily limit of vm-7 in tokens");
    expect(limit).toHaveProperty("value", "100");
    await user.clear(limit);
    await user.type(limit, "200");
    await user.click(screen.getByRole("button", { name: "Save limits" }));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain(message));
  });
});
