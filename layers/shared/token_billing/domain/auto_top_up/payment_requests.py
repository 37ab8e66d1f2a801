"""What the charger asks Stripe to bill: the metadata every auto top-up payment carries
(its webhooks find and check the order by it; a lookup past Stripe's idempotency window
finds the payment by its `attempt_id`), and the invoice for the packs (StripeInvoices=true).
"""

from __future__ import annotations

from typing import Any

from token_billing.domain.auto_top_up.vocabulary import KIND
from token_billing.domain.billing_settings import BillingSettings, grouped_tokens, tokens_field
from token_billing.domain.catalog import get_package
from token_billing.store.order_records import Order
from token_billing.store.top_up_records import Attempt, TopUpState


def charge_metadata(order: Order, attempt: Attempt) -> dict[str, str]:
    """What the payment (PaymentIntent or invoice) says it is for: its webhooks find and
    check the order by it, and a lookup past Stripe's idempotency window by `attempt_id`."""
    return {
        "customer_id": order.customer_id,
        "order_id": order.order_id,
        "package_id": order.package_id,
        "packs": str(order.packs),
        "kind": KIND,
        "attempt_id": attempt.attempt_id,
        "catalog_version": order.catalog_version,
    }


def invoice_params(
    order: Order, state: TopUpState, attempt: Attempt, billing: BillingSettings
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The invoice for every pack and its one line: `packs` x the catalog price (before
    tax), billed to the customer's Stripe Customer (its name, address and tax ID are the
    ones its card-saving Checkout kept)."""
    assert state.stripe_customer_id
    package = get_package(order.package_id)
    assert order.price_cents == package.price_cents * order.packs
    metadata = charge_metadata(order, attempt)
    invoice: dict[str, Any] = {
        "customer": state.stripe_customer_id,
        "collection_method": "charge_automatically",
        # The charger pays it now; Stripe must neither retry it nor e-mail it on its own.
        "auto_advance": False,
        # Only the line added below: never a pending item of the customer left elsewhere.
        "pending_invoice_items_behavior": "exclude",
        "currency": order.currency,
        "description": f"Auto top-up: {order.packs} x {package.name} token pack",
        "metadata": metadata,
        "custom_fields": [tokens_field(order.total_mt)],
    }
    per_pack = grouped_tokens(package.tokens_mt + package.bonus_mt)
    item: dict[str, Any] = {
        "customer": state.stripe_customer_id,
        "currency": order.currency,
        "quantity": order.packs,
        "unit_amount_decimal": str(package.price_cents),
        "description": f"{package.name} token pack ({per_pack} tokens)",
        "metadata": metadata,
    }
    if billing.stripe_tax:
        invoice["automatic_tax"] = {"enabled": True}
        item["tax_behavior"] = "exclusive"
    return invoice, [item]
