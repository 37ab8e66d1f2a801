import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { order } from "../test/fixtures";
import { OrderList } from "./parts/OrderList";

const INVOICE = "https://invoice.stripe.com/i/acct_1/test_1";

describe("OrderList", () => {
  it("links a paid order's invoice, its PDF and its receipt, opening in a new tab", () => {
    render(
      <OrderList
        orders={[
          order("paid", {
            invoice_number: "A1B2C3D4-0001",
            invoice_url: INVOICE,
            invoice_pdf: `${INVOICE}/pdf`,
            receipt_url: "https://pay.stripe.com/receipts/payment/rcpt_1",
          }),
        ]}
      />,
    );
    const row = screen.getByRole("listitem");
    const invoice = within(row).getByRole("link", { name: "Invoice" });
    expect(invoice.getAttribute("href")).toBe(INVOICE);
    expect(invoice.getAttribute("target")).toBe("_blank");
    expect(invoice.getAttribute("rel")).toBe("noopener noreferrer");
    expect(within(row).getByText("A1B2C3D4-0001")).toBeTruthy();
    expect(within(row).getByRole("link", { name: "PDF" }).getAttribute("href")).toBe(
      `${INVOICE}/pdf`,
    );
    expect(within(row).getByRole("link", { name: "Receipt" }).getAttribute("href")).toBe(
      "https://pay.stripe.com/receipts/payment/rcpt_1",
    );
  });

  it("shows no documents before Stripe reports them, and only http(s) links", () => {
    render(
      <OrderList
        orders={[
          order("pending", { id: "ord_pending" }),
          order("paid", { id: "ord_odd", receipt_url: "javascript:alert(1)" }),
        ]}
      />,
    );
    expect(screen.queryByRole("link")).toBeNull();
  });

  it("shows the total with the tax Stripe added on top of the catalog price", () => {
    render(
      <OrderList
        orders={[order("paid", { subtotal_cents: 4900, tax_cents: 931, total_cents: 5831 })]}
      />,
    );
    expect(screen.getByRole("listitem").textContent).toContain("$58.31 incl. $9.31 tax");
  });
});
