"""The offline Stripe's invoices and charges: what `make dev` shows a buyer in place of
Stripe's own documents.

Invoices are Stripe-shaped (the fields this service and its tests read): numbered per
customer as Stripe numbers them (`<customer prefix>-0001`), with lines, the buyer's name,
e-mail, address and tax IDs copied from the Customer at finalization, a subtotal, tax lines
(`total_taxes`) and a total, a hosted page and a PDF served by the dev server
(`local.local_pages`, rendered by `local.invoice_documents`). Charges carry a receipt page.

Tax is a stand-in for Stripe Tax, not a model of it: with `automatic_tax` on, an address in
a "taxed" country (FAKE_TAX_RATES) pays that one fixed rate on the tax-exclusive subtotal,
every other address pays none. Stripe decides by the seller's registrations, the buyer's
address and tax ID, and the product's tax code.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Stripe's test payment methods and what an charge with each does.
TEST_CARDS: dict[str, dict[str, Any]] = {
    "pm_card_visa": {"brand": "visa", "last4": "4242", "outcome": "succeeded"},
    "pm_card_chargeDeclined": {"brand": "visa", "last4": "0002", "outcome": "card_declined"},
    "pm_card_authenticationRequired": {
        "brand": "visa",
        "last4": "3184",
        "outcome": "authentication_required",
    },
}
SELLER_NAME = "Token Billing (offline Stripe)"
SELLER_COUNTRY = "US"


@dataclass(frozen=True, slots=True)
class FakeTaxRate:
    rate_id: str
    display_name: str
    percent: int


# The fake's taxed addresses: by country, one rate each.
FAKE_TAX_RATES: dict[str, FakeTaxRate] = {"DE": FakeTaxRate("txr_local_de_vat", "VAT", 19)}
TAX_RATES_BY_ID = {rate.rate_id: rate for rate in FAKE_TAX_RATES.values()}
# The tax ID type Checkout would record for an address in these countries.
TAX_ID_TYPES = {"DE": "eu_vat", "FR": "eu_vat", "GB": "gb_vat", "US": "us_ein"}


def tax_lines(automatic_tax: bool, address: Mapping[str, Any] | None, subtotal: int) -> list[Any]:
    """`total_taxes` for a subtotal billed to `address`: the fake's fixed rate for a taxed
    country, rounded half up to the cent; none otherwise or with automatic tax off."""
    rate = FAKE_TAX_RATES.get(str((address or {}).get("country") or ""))
    if not automatic_tax or rate is None or subtotal <= 0:
        return []
    return [
        {
            "amount": (subtotal * rate.percent + 50) // 100,
            "tax_behavior": "exclusive",
            "taxability_reason": "standard_rated",
            "taxable_amount": subtotal,
            "type": "tax_rate_details",
            "tax_rate_details": {"tax_rate": rate.rate_id},
        }
    ]


def billing_details(form: Mapping[str, str] | None) -> dict[str, Any]:
    """Checkout's `customer_details` from what the buyer typed on the offline page."""
    form = form or {}
    country = (form.get("country") or "US").strip().upper()[:2]
    tax_id = (form.get("tax_id") or "").strip()
    return {
        "name": (form.get("name") or "").strip() or None,
        "email": (form.get("email") or "").strip() or None,
        "address": {
            "line1": (form.get("line1") or "").strip() or None,
            "line2": None,
            "city": (form.get("city") or "").strip() or None,
            "postal_code": (form.get("postal_code") or "").strip() or None,
            "state": None,
            "country": country,
        },
        "tax_ids": [{"type": TAX_ID_TYPES.get(country, "unknown"), "value": tax_id}]
        if tax_id
        else [],
        "tax_exempt": "none",
    }


@dataclass
class FakeInvoices:
    """Invoices in memory: drafted, given lines, finalized (numbered, taxed), paid or voided."""

    public_base: str
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    _next_number: dict[str, int] = field(default_factory=dict)

    def draft(
        self, customer: Mapping[str, Any], params: Mapping[str, Any], currency: str | None
    ) -> dict[str, Any]:
        """A draft invoice for `customer` (POST /v1/invoices, or Checkout's own)."""
        invoice_id = "in_local_" + secrets.token_hex(12)
        automatic_tax = (params.get("automatic_tax") or {}).get("enabled") in (True, "true")
        invoice: dict[str, Any] = {
            "id": invoice_id,
            "object": "invoice",
            "account_country": SELLER_COUNTRY,
            "account_name": SELLER_NAME,
            "amount_due": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "auto_advance": params.get("auto_advance") in (True, "true"),
            "automatic_tax": {"enabled": automatic_tax, "status": "complete"},
            "collection_method": params.get("collection_method") or "charge_automatically",
            "created": int(time.time()),
            "currency": currency or params.get("currency") or "usd",
            "custom_fields": list(params.get("custom_fields") or []) or None,
            "customer": customer["id"],
            "customer_address": None,
            "customer_email": None,
            "customer_name": None,
            "customer_tax_ids": [],
            "description": params.get("description"),
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "lines": {"object": "list", "data": [], "has_more": False},
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "number": None,
            "status": "draft",
            "status_transitions": {"finalized_at": None, "paid_at": None, "voided_at": None},
            "subtotal": 0,
            "total": 0,
            "total_excluding_tax": 0,
            "total_taxes": [],
        }
        self.invoices[invoice_id] = invoice
        return invoice

    def add_line(
        self, invoice: dict[str, Any], *, description: str, quantity: int, unit_amount: int
    ) -> None:
        """A line of `quantity` x `unit_amount` (cents, tax-exclusive) on a draft."""
        assert invoice["status"] == "draft", "only a draft invoice takes lines"
        invoice["lines"]["data"].append(
            {
                "id": "il_local_" + secrets.token_hex(8),
                "object": "line_item",
                "amount": unit_amount * quantity,
                "currency": invoice["currency"],
                "description": description,
                "quantity": quantity,
                "pricing": {"unit_amount_decimal": str(unit_amount)},
            }
        )

    def finalize(self, invoice: dict[str, Any], customer: Mapping[str, Any]) -> dict[str, Any]:
        """Number the draft, copy the buyer's details, compute tax and total (Stripe's
        `finalize_invoice`); a finalized invoice is left as it is."""
        if invoice["status"] != "draft":
            return invoice
        prefix = str(customer["id"]).removeprefix("cus_local_")[:8].upper()
        self._next_number[prefix] = self._next_number.get(prefix, 0) + 1
        subtotal = sum(int(line["amount"]) for line in invoice["lines"]["data"])
        address = customer.get("address")
        taxes = tax_lines(invoice["automatic_tax"]["enabled"], address, subtotal)
        total = subtotal + sum(int(tax["amount"]) for tax in taxes)
        page = f"{self.public_base}/_local/invoices/{invoice['id']}"
        invoice.update(
            number=f"{prefix}-{self._next_number[prefix]:04d}",
            status="open",
            customer_name=customer.get("name"),
            customer_email=customer.get("email"),
            customer_address=address,
            customer_tax_ids=list(customer.get("tax_ids") or []),
            subtotal=subtotal,
            total_excluding_tax=subtotal,
            total_taxes=taxes,
            total=total,
            amount_due=total,
            amount_remaining=total,
            hosted_invoice_url=page,
            invoice_pdf=f"{page}/pdf",
        )
        invoice["status_transitions"]["finalized_at"] = int(time.time())
        return invoice

    def mark_paid(self, invoice: dict[str, Any]) -> dict[str, Any]:
        invoice.update(status="paid", amount_paid=invoice["total"], amount_remaining=0)
        invoice["status_transitions"]["paid_at"] = int(time.time())
        return invoice

    def void(self, invoice: dict[str, Any]) -> dict[str, Any]:
        invoice.update(status="void", amount_remaining=0)
        invoice["status_transitions"]["voided_at"] = int(time.time())
        return invoice

    def for_checkout(
        self,
        session: Mapping[str, Any],
        params: Mapping[str, Any],
        customer: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The paid invoice Checkout creates after a payment with `invoice_creation`."""
        invoice_data = (params.get("invoice_creation") or {}).get("invoice_data") or {}
        invoice = self.draft(
            customer,
            {**invoice_data, "automatic_tax": params.get("automatic_tax")},
            session.get("currency"),
        )
        for line in params.get("line_items") or []:
            price_data = line.get("price_data") or {}
            product = price_data.get("product_data") or {}
            self.add_line(
                invoice,
                description=" - ".join(
                    filter(
                        None, [product.get("name") or line.get("price"), product.get("description")]
                    )
                ),
                quantity=int(line.get("quantity") or 1),
                unit_amount=int(price_data.get("unit_amount") or 0),
            )
        return self.mark_paid(self.finalize(invoice, customer))

    def charge(
        self,
        *,
        amount: int,
        currency: str,
        customer: str | None,
        payment_intent: str,
        card: Mapping[str, Any],
        metadata: Mapping[str, Any],
    ) -> dict[str, Any]:
        """A successful card charge and its receipt page (Stripe copies the PaymentIntent's
        metadata onto the charge it makes)."""
        charge_id = "ch_local_" + secrets.token_hex(12)
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": 0,
            "currency": currency,
            "customer": customer,
            "paid": True,
            "captured": True,
            "refunded": False,
            "status": "succeeded",
            "payment_intent": payment_intent,
            "payment_method_details": {"type": "card", "card": dict(card)},
            "metadata": dict(metadata),
            "receipt_url": f"{self.public_base}/_local/receipts/{charge_id}",
            "created": int(time.time()),
            "livemode": False,
        }
        self.charges[charge_id] = charge
        return charge
