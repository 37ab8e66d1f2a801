"""The Stripe events auto top-up listens to, from the verified webhook only.

- `payment_method.attached` to our customer's Stripe Customer: the saved card (its id comes
  from here, never from a client); a new card clears a pause.
- `payment_method.detached`: the card is gone, auto top-up is disabled and says why.
- `payment_intent.succeeded` of an auto top-up order (metadata `kind = auto_top_up`): the
  credit, through the same exactly-once order path as a Checkout purchase (one transaction:
  order pending -> paid, balance + tokens, the entry keyed by the order, the payment-intent
  -> order record that refunds and disputes find).
- after a recovery Checkout (metadata `kind = auto_top_up_recovery`) is credited by the
  ordinary session path: the successful payment clears the pause.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from token_billing.core.observability import MetricUnit, logger, metrics
from token_billing.domain.auto_top_up import KIND, RECOVERY_KIND
from token_billing.domain.payments import Outcome, credit_order
from token_billing.store.codecs import utc_now_iso
from token_billing.store.ledger import Ledger
from token_billing.store.order_records import Order
from token_billing.store.orders import OrderStore
from token_billing.store.top_up_state import SavedCard, TopUpStore
from token_billing.store.transactions import ExtraConditionFailed

CARD_EVENTS = frozenset({"payment_method.attached", "payment_method.detached"})


def handle_top_up_event(
    event: Mapping[str, Any], *, orders: OrderStore, ledger: Ledger, top_ups: TopUpStore
) -> Outcome | None:
    """The outcome of an auto top-up event; None for every event that is not one."""
    event_type = str(event.get("type"))
    obj = (event.get("data") or {}).get("object") or {}
    if not isinstance(obj, Mapping):
        return None
    if event_type == "payment_method.attached":
        return _card_attached(obj, top_ups)
    if event_type == "payment_method.detached":
        return _card_detached(obj, top_ups)
    if event_type == "payment_intent.succeeded":
        metadata = obj.get("metadata") or {}
        if metadata.get("kind") == KIND:
            return _credit_payment_intent(obj, orders, ledger, top_ups)
    return None


def after_payment_event(
    event: Mapping[str, Any], outcome: Outcome, *, orders: OrderStore, top_ups: TopUpStore
) -> None:
    """A recovery Checkout was credited: the pause is over (a redelivery of its event marks
    the attempt, and clears no pause set since)."""
    if outcome.action not in ("credited", "already_credited") or not outcome.order_id:
        return
    obj = (event.get("data") or {}).get("object") or {}
    metadata = obj.get("metadata") or {} if isinstance(obj, Mapping) else {}
    if metadata.get("kind") != RECOVERY_KIND:
        return
    order = orders.find(str(metadata.get("customer_id")), outcome.order_id)
    if order is None or order.kind != KIND:
        return
    top_ups.record_credit(order.customer_id, order, clear_pause=outcome.action == "credited")
    if order.attempt_version is not None:
        top_ups.mark_recovered(order.customer_id, order.attempt_version)
    logger.info("auto top-up recovered on-session", extra={"order_id": order.order_id})


def _card_attached(pm: Mapping[str, Any], top_ups: TopUpStore) -> Outcome:
    stripe_customer = pm.get("customer")
    pm_id = pm.get("id")
    if not isinstance(stripe_customer, str) or not isinstance(pm_id, str):
        return Outcome("ignored", detail="payment method without a customer")
    customer_id = top_ups.customer_of(stripe_customer_id=stripe_customer)
    if customer_id is None:
        return Outcome("ignored", detail="not a Stripe customer of this service")
    card = pm.get("card") or {}
    saved = top_ups.save_card(
        customer_id,
        SavedCard(
            payment_method_id=pm_id,
            brand=_text(card.get("brand")),
            last4=_text(card.get("last4")),
            exp_month=_number(card.get("exp_month")),
            exp_year=_number(card.get("exp_year")),
        ),
        saved_at=utc_now_iso(),
    )
    return Outcome("card_saved" if saved else "card_unchanged", detail=customer_id)


def _card_detached(pm: Mapping[str, Any], top_ups: TopUpStore) -> Outcome:
    pm_id = pm.get("id")
    if not isinstance(pm_id, str):
        return Outcome("ignored", detail="payment method without an id")
    customer_id = top_ups.customer_of(payment_method_id=pm_id)
    if customer_id is None:
        return Outcome("ignored", detail="not a saved card of this service")
    removed = top_ups.remove_card(customer_id, pm_id, reason="card_detached")
    if removed:
        metrics.add_metric(name="AutoTopUpCardsRemoved", unit=MetricUnit.Count, value=1)
    return Outcome("card_removed" if removed else "unchanged", detail=customer_id)


def payment_intent_mismatches(order: Order, pi: Mapping[str, Any]) -> list[str]:
    """Every way the succeeded PaymentIntent disagrees with the auto top-up order."""
    metadata = pi.get("metadata") or {}
    found = []
    received = pi.get("amount_received", pi.get("amount"))
    if received != order.price_cents or pi.get("amount") != order.price_cents:
        found.append(f"amount {received} != {order.price_cents}")
    if str(pi.get("currency", "")).lower() != order.currency:
        found.append(f"currency {pi.get('currency')} != {order.currency}")
    if metadata.get("customer_id") != order.customer_id:
        found.append("customer does not match the order")
    if metadata.get("package_id") != order.package_id:
        found.append(f"package {metadata.get('package_id')} != {order.package_id}")
    if metadata.get("packs") != str(order.packs):
        found.append(f"packs {metadata.get('packs')} != {order.packs}")
    if order.kind != KIND:
        found.append(f"order is a {order.kind}, not an auto top-up")
    return found


def _credit_payment_intent(
    pi: Mapping[str, Any], orders: OrderStore, ledger: Ledger, top_ups: TopUpStore
) -> Outcome:
    metadata = pi.get("metadata") or {}
    customer_id, order_id, pi_id = (
        metadata.get("customer_id"),
        metadata.get("order_id"),
        pi.get("id"),
    )
    if not all(isinstance(value, str) for value in (customer_id, order_id, pi_id)):
        return Outcome("ignored", detail="payment intent without its order")
    assert isinstance(customer_id, str) and isinstance(order_id, str) and isinstance(pi_id, str)
    order = orders.find(customer_id, order_id)
    if order is None:
        return Outcome("ignored", detail="not an order of this service")
    problems = payment_intent_mismatches(order, pi)
    if problems:
        reason = "; ".join(problems)
        orders.mark(order, "flagged", extra={"flag_reason": {"S": reason}})
        metrics.add_metric(name="AmountMismatches", unit=MetricUnit.Count, value=1)
        logger.error("auto top-up payment does not match its order", extra={"reason": reason})
        return Outcome("flagged", order.order_id, reason)
    try:
        posted = credit_order(
            ledger,
            order,
            [
                orders.paid_transition(order, payment_intent_id=pi_id, session_id=None),
                orders.payment_link(order, pi_id),
            ],
        )
    except ExtraConditionFailed:
        current = orders.get(order.customer_id, order.order_id)
        metrics.add_metric(name="CreditRefusedByOrderState", unit=MetricUnit.Count, value=1)
        return Outcome("not_credited", order.order_id, f"order is {current.status}")
    # A successful payment clears a pause (e.g. an attempt that timed out, then went through);
    # its redelivery is no new payment and leaves a pause a later failure set.
    top_ups.record_credit(order.customer_id, order, clear_pause=not posted.replayed)
    if posted.replayed:
        return Outcome("already_credited", order.order_id)
    metrics.add_metric(name="TokensCreditedMt", unit=MetricUnit.Count, value=posted.amount_mt)
    return Outcome("credited", order.order_id)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
