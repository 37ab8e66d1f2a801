"""Which order a Checkout Session pays for, and what to do when it names one we lack.

The order is found by the session id Stripe generated (the purchase wrote a session ->
order link when it attached the session), then, for sessions created before that link
existed, by the metadata the session carries. A paid session whose metadata names an order
of ours (our id format) that neither finds is never silent: a support item, the metric
`UnmatchedPayments` (alarmed) and an error log. A session without an order of ours in its
metadata belongs to another integration on the same Stripe account and stays ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from token_billing.core.observability import MetricUnit, logger, metrics
from token_billing.store.order_records import Order
from token_billing.store.orders import OrderStore
from token_billing.store.unmatched_payments import UnmatchedPayment, UnmatchedPayments

# purchases.new_order_id: "ord_" + 12 hex digits of milliseconds + 12 random hex digits.
OUR_ORDER_ID = re.compile(r"ord_[0-9a-f]{24}")
PAID_SESSION_EVENTS = frozenset(
    {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
)


def nonempty_text(value: object) -> str | None:
    """A Stripe field that is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def order_of_session(session: Mapping[str, Any], store: OrderStore) -> Order | None:
    """The order this session was created for: by its Stripe id, else by its metadata."""
    session_id = nonempty_text(session.get("id"))
    if session_id is not None:
        order = store.order_for_session(session_id)
        if order is not None:
            return order
    metadata = session.get("metadata") or {}
    order_id = nonempty_text(metadata.get("order_id")) if isinstance(metadata, Mapping) else None
    customer_id = (
        nonempty_text(metadata.get("customer_id")) if isinstance(metadata, Mapping) else None
    ) or nonempty_text(session.get("client_reference_id"))
    if order_id is None or customer_id is None:
        return None
    return store.find(customer_id, order_id)


def order_of_payment(obj: Mapping[str, Any], store: OrderStore) -> Order | None:
    """The order a charge or dispute pays for: by the payment intent -> order record the
    credit wrote, else by the metadata Stripe copied from the PaymentIntent."""
    payment_intent = obj.get("payment_intent")
    if isinstance(payment_intent, str):
        order = store.order_for_payment(payment_intent)
        if order is not None:
            return order
    metadata = obj.get("metadata") or {}
    customer_id, order_id = metadata.get("customer_id"), metadata.get("order_id")
    if isinstance(customer_id, str) and isinstance(order_id, str):
        return store.find(customer_id, order_id)
    return None


def names_our_order(session: Mapping[str, Any]) -> bool:
    metadata = session.get("metadata") or {}
    order_id = metadata.get("order_id") if isinstance(metadata, Mapping) else None
    return isinstance(order_id, str) and OUR_ORDER_ID.fullmatch(order_id) is not None


def is_paid(event_type: str, session: Mapping[str, Any]) -> bool:
    if event_type == "checkout.session.completed":
        return session.get("payment_status") == "paid"
    return event_type in PAID_SESSION_EVENTS


def record_unmatched(
    event_id: str, session: Mapping[str, Any], unmatched: UnmatchedPayments
) -> str:
    """Record a paid session that names an order of ours we cannot find; the detail for
    the webhook's reply. Once per session: a redelivery records and counts nothing more."""
    metadata = session.get("metadata") or {}
    metadata = metadata if isinstance(metadata, Mapping) else {}
    amount = session.get("amount_total")
    payment = UnmatchedPayment(
        object_id=str(session.get("id") or "unknown"),
        event_id=event_id,
        claimed_customer_id=nonempty_text(metadata.get("customer_id"))
        or nonempty_text(session.get("client_reference_id")),
        claimed_order_id=nonempty_text(metadata.get("order_id")),
        claimed_package_id=nonempty_text(metadata.get("package_id")),
        amount_total_cents=amount
        if isinstance(amount, int) and not isinstance(amount, bool)
        else None,
        currency=nonempty_text(session.get("currency")),
        payment_intent_id=nonempty_text(session.get("payment_intent")),
    )
    first = unmatched.record(payment)
    if first:
        metrics.add_metric(name="UnmatchedPayments", unit=MetricUnit.Count, value=1)
    logger.error(
        "paid checkout session names an order we cannot find; nothing credited",
        extra={
            "session_id": payment.object_id,
            "claimed_order_id": payment.claimed_order_id,
            "claimed_customer_id": payment.claimed_customer_id,
            "amount_total_cents": payment.amount_total_cents,
            "currency": payment.currency,
            "first_report": first,
        },
    )
    return (
        f"no order {payment.claimed_order_id} for customer {payment.claimed_customer_id}: "
        "recorded for support"
    )
