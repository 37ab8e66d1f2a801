"""One table from a verified Stripe event's type to the domain function that applies it
(`ROUTES`), and the one function the webhook calls (`apply_stripe_event`). A type not in
the table is acknowledged and ignored: Stripe sends only what the endpoint subscribes to,
and a 200 stops it redelivering anything else."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from token_billing.domain.auto_top_up.webhooks import (
    after_recovery_checkout,
    card_attached,
    card_detached,
    invoice_paid,
    payment_intent_succeeded,
    recovery_credit_items,
)
from token_billing.domain.billing_documents import (
    DocumentStores,
    charge_succeeded,
    invoice_event,
    invoice_payment_paid,
)
from token_billing.domain.event_outcome import Outcome
from token_billing.domain.payments import (
    checkout_session_event,
    claw_back_dispute,
    claw_back_refund,
)
from token_billing.store.ledger import Ledger
from token_billing.store.orders import OrderStore
from token_billing.store.top_up_store import TopUpStore
from token_billing.store.unmatched_payments import UnmatchedPayments


@dataclass(frozen=True, slots=True)
class EventStores:
    """What applying a Stripe event may read and write."""

    orders: OrderStore
    ledger: Ledger
    top_ups: TopUpStore
    unmatched: UnmatchedPayments | None = None  # built from `orders` when first needed


@dataclass(frozen=True, slots=True)
class StripeEvent:
    """A verified event: its id, its type and the object it is about."""

    event_id: str
    event_type: str
    obj: Mapping[str, Any]


EventHandler = Callable[[StripeEvent, EventStores], Outcome]


def _checkout_session(event: StripeEvent, stores: EventStores) -> Outcome:
    outcome = checkout_session_event(
        event.event_id,
        event.event_type,
        event.obj,
        store=stores.orders,
        ledger=stores.ledger,
        unmatched=stores.unmatched,
        # A recovery Checkout pays an auto top-up that needed authentication: its credit
        # ends the pause it was created for, in the same transaction.
        credit_items=lambda order: recovery_credit_items(event.obj, order, top_ups=stores.top_ups),
    )
    # ... and its attempt is marked recovered, on every delivery.
    after_recovery_checkout(event.obj, outcome, orders=stores.orders, top_ups=stores.top_ups)
    return outcome


def _payment_intent_succeeded(event: StripeEvent, stores: EventStores) -> Outcome:
    return payment_intent_succeeded(
        event.obj, orders=stores.orders, ledger=stores.ledger, top_ups=stores.top_ups
    )


def _card_attached(event: StripeEvent, stores: EventStores) -> Outcome:
    return card_attached(event.obj, top_ups=stores.top_ups)


def _card_detached(event: StripeEvent, stores: EventStores) -> Outcome:
    return card_detached(event.obj, top_ups=stores.top_ups)


def _documents(stores: EventStores) -> DocumentStores:
    return DocumentStores(stores.orders, stores.unmatched, stores.top_ups)


def _invoice(event: StripeEvent, stores: EventStores) -> Outcome:
    return invoice_event(event.event_id, event.obj, _documents(stores))


def _invoice_paid(event: StripeEvent, stores: EventStores) -> Outcome:
    # The invoice's number and links first (they move no tokens); then, for an auto
    # top-up's invoice paid off-session, the credit.
    recorded = invoice_event(event.event_id, event.obj, _documents(stores))
    credit = invoice_paid(
        event.obj, orders=stores.orders, ledger=stores.ledger, top_ups=stores.top_ups
    )
    return recorded if credit.action in ("acknowledged", "ignored") else credit


def _invoice_payment(event: StripeEvent, stores: EventStores) -> Outcome:
    return invoice_payment_paid(event.event_id, event.obj, _documents(stores))


def _charge_succeeded(event: StripeEvent, stores: EventStores) -> Outcome:
    return charge_succeeded(event.event_id, event.obj, _documents(stores))


def _refund(event: StripeEvent, stores: EventStores) -> Outcome:
    return claw_back_refund(event.obj, stores.orders, stores.ledger)


def _dispute(event: StripeEvent, stores: EventStores) -> Outcome:
    return claw_back_dispute(event.obj, stores.orders, stores.ledger)


ROUTES: Mapping[str, EventHandler] = MappingProxyType(
    {
        "checkout.session.completed": _checkout_session,
        "checkout.session.async_payment_succeeded": _checkout_session,
        "checkout.session.async_payment_failed": _checkout_session,
        "checkout.session.expired": _checkout_session,
        "payment_intent.succeeded": _payment_intent_succeeded,
        "payment_method.attached": _card_attached,
        "payment_method.detached": _card_detached,
        "invoice.finalized": _invoice,
        "invoice.paid": _invoice_paid,
        "invoice_payment.paid": _invoice_payment,
        "charge.succeeded": _charge_succeeded,
        "charge.refunded": _refund,
        "charge.dispute.created": _dispute,
    }
)


def apply_stripe_event(event: Mapping[str, Any], stores: EventStores) -> Outcome:
    """Apply one verified Stripe event through its route; other types are ignored."""
    event_type = str(event.get("type"))
    obj = (event.get("data") or {}).get("object") or {}
    if not isinstance(obj, Mapping):
        return Outcome("ignored", detail="event without an object")
    handler = ROUTES.get(event_type)
    if handler is None:
        return Outcome("ignored", detail=f"unhandled event type {event_type}")
    return handler(StripeEvent(str(event.get("id")), event_type, obj), stores)
