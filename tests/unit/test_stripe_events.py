"""The one routing table from Stripe event type to the domain: what it routes, what it
ignores, and that it names exactly the events the README tells an operator to register."""

from __future__ import annotations

import re
from typing import Any, cast

from tests.conftest import ROOT
from token_billing.domain.event_outcome import Outcome
from token_billing.domain.stripe_events import ROUTES, EventStores, apply_stripe_event
from token_billing.store.ledger import Ledger
from token_billing.store.orders import OrderStore
from token_billing.store.top_up_store import TopUpStore

# Ignoring an event reads and writes nothing: stores that are never touched.
UNTOUCHED = EventStores(
    orders=cast(OrderStore, None), ledger=cast(Ledger, None), top_ups=cast(TopUpStore, None)
)


def event(event_type: str, obj: Any) -> dict[str, Any]:
    return {"id": "evt_1", "type": event_type, "data": {"object": obj}}


def test_the_events_registered_with_stripe_are_exactly_the_routed_ones() -> None:
    readme = (ROOT / "README.md").read_text()
    step = readme[readme.index("**3. Register the webhook.**") :]
    step = step[: step.index("Then put its signing secret")]
    registered = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", step))
    assert registered == set(ROUTES)


def test_an_event_of_another_type_is_acknowledged_and_ignored() -> None:
    assert apply_stripe_event(event("customer.created", {"id": "cus_1"}), UNTOUCHED) == Outcome(
        "ignored", detail="unhandled event type customer.created"
    )
    assert apply_stripe_event({"type": "invoice.paid"}, UNTOUCHED).action == "ignored"


def test_an_event_without_an_object_is_ignored_whatever_its_type() -> None:
    for event_type in [*ROUTES, "customer.created"]:
        outcome = apply_stripe_event(event(event_type, "not an object"), UNTOUCHED)
        assert outcome == Outcome("ignored", detail="event without an object")


def test_a_checkout_payment_intent_is_only_acknowledged() -> None:
    # Checkout's own session events credit its order; its PaymentIntent never does.
    intent = {"id": "pi_1", "metadata": {"order_id": "ord_1", "kind": "purchase"}}
    outcome = apply_stripe_event(event("payment_intent.succeeded", intent), UNTOUCHED)
    assert outcome.action == "acknowledged"
