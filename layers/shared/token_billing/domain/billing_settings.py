"""What the operator turned on for billing documents and tax, and what that adds to a
Checkout Session.

Three template parameters reach the purchase function and the auto top-up charger as
environment variables:

- `StripeInvoices` (STRIPE_INVOICES, default on): every purchase gets a Stripe invoice
  (Checkout's `invoice_creation`; an auto top-up is an off-session payment of an invoice),
  with the buyer's billing address collected. Off: a receipt only (Stripe bills invoice
  creation per paid invoice, so an operator may choose receipts alone).
- `StripeTax` (STRIPE_TAX, default off): Stripe Tax computes tax on top of the catalog
  price (`automatic_tax`; catalog prices are tax-exclusive). The tokens never change with
  the tax: the credit checks the subtotal against the catalog.
- `CollectTaxIds` (COLLECT_TAX_IDS, default off): Checkout asks for the buyer's tax ID,
  printed on the invoice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from token_billing.core.units import format_tokens

# Stripe allows up to 4 custom fields on an invoice, names up to 40 characters.
TOKENS_FIELD = "Tokens"


@dataclass(frozen=True, slots=True)
class BillingSettings:
    invoices: bool = True
    stripe_tax: bool = False
    collect_tax_ids: bool = False

    @classmethod
    def from_environment(cls) -> BillingSettings:
        return cls(
            invoices=_flag("STRIPE_INVOICES", default=True),
            stripe_tax=_flag("STRIPE_TAX", default=False),
            collect_tax_ids=_flag("COLLECT_TAX_IDS", default=False),
        )


def _flag(name: str, *, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if value == "" else value == "true"


def grouped_tokens(amount_mt: int) -> str:
    """Tokens as a reader writes them on a document: 6500000 mt -> '6,500'."""
    whole, _, fraction = format_tokens(amount_mt).partition(".")
    grouped = f"{int(whole):,}"
    return f"{grouped}.{fraction}" if fraction else grouped


def tokens_field(total_mt: int) -> dict[str, str]:
    """The invoice's custom field that says how many tokens it bought."""
    return {"name": TOKENS_FIELD, "value": grouped_tokens(total_mt)}


def checkout_document_params(
    settings: BillingSettings,
    *,
    metadata: dict[str, str],
    total_mt: int,
    has_customer: bool,
) -> dict[str, Any]:
    """What a Checkout Session adds for the documents and the tax the operator chose: the
    billing address, the post-purchase invoice (carrying the order's metadata, so its events
    find the order, and the tokens bought), tax IDs, automatic tax. Empty when all are off."""
    params: dict[str, Any] = {}
    if settings.invoices or settings.stripe_tax or settings.collect_tax_ids:
        params["billing_address_collection"] = "required"
    if settings.invoices:
        params["invoice_creation"] = {
            "enabled": True,
            "invoice_data": {"metadata": metadata, "custom_fields": [tokens_field(total_mt)]},
        }
    if settings.collect_tax_ids:
        params["tax_id_collection"] = {"enabled": True}
    if settings.stripe_tax:
        params["automatic_tax"] = {"enabled": True}
    if has_customer and params:
        # An existing Customer keeps what the buyer enters (Stripe requires `name: auto` with
        # tax ID collection, `address: auto` with automatic tax); its later off-session
        # invoices (auto top-up) bill the same name, address and tax ID.
        params["customer_update"] = {"name": "auto", "address": "auto"}
    return params
