"""Stripe events -> ledger: credit a paid order exactly once, claw back refunds and disputes.

Every event may arrive twice, late or out of order. Credits are idempotent by order id
(the ledger entry's key), clawbacks by the event's object and cumulative amount, and order
status moves only by conditional writes, so a replay can never move tokens again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from token_billing.core.errors import ServiceUnavailable
from token_billing.core.observability import MetricUnit, logger, metrics
from token_billing.domain.billing_documents import DocumentStores, record_session_invoice
from token_billing.domain.event_outcome import Outcome
from token_billing.domain.session_orders import (
    is_paid,
    names_our_order,
    order_of_payment,
    order_of_session,
    record_unmatched,
)
from token_billing.store.ledger import Ledger
from token_billing.store.order_records import PAID_STATUSES, Order, PaidAmounts
from token_billing.store.orders import OrderConditionFailed, OrderStore
from token_billing.store.records import PostedEntry
from token_billing.store.transactions import ExtraConditionFailed
from token_billing.store.unmatched_payments import UnmatchedPayments

CLAWBACK_ATTEMPTS = 3
# What else an order's credit writes in its transaction, by order (DynamoDB items from a store).
CreditItems = Callable[[Order], Sequence[Mapping[str, Any]]]


def credit_order(
    ledger: Ledger, order: Order, extra_items: Sequence[Mapping[str, Any]]
) -> PostedEntry:
    """Credit a paid order's tokens and bonus, once per order id, in one transaction with
    the order's own items (`extra_items`: pending -> paid, the payment link)."""
    return ledger.credit_purchase(
        customer_id=order.customer_id,
        order_id=order.order_id,
        package_id=order.package_id,
        tokens_mt=order.tokens_mt,
        bonus_mt=order.bonus_mt,
        catalog_version=order.catalog_version,
        extra_items=extra_items,
    )


def checkout_session_event(
    event_id: str,
    event_type: str,
    session: Mapping[str, Any],
    *,
    store: OrderStore,
    ledger: Ledger,
    unmatched: UnmatchedPayments | None = None,
    credit_items: CreditItems | None = None,
) -> Outcome:
    """A Checkout Session's event: credit a paid session's order once, fail or expire an
    unpaid one; a paid session naming an order of ours that we lack is recorded, never
    silent; a session of another integration is ignored. The invoice Checkout created is
    recorded on the order first (it moves no tokens). `credit_items`: what else the credit
    of this order writes in its transaction (a recovery Checkout's end of a pause)."""
    order = order_of_session(session, store)
    if order is None:
        if names_our_order(session) and is_paid(event_type, session):
            sink = unmatched or UnmatchedPayments(store.client, store.table_name)
            return Outcome("unmatched", detail=record_unmatched(event_id, session, sink))
        return Outcome("ignored", detail="not an order of this service")
    record_session_invoice(event_id, session, order, DocumentStores(store, unmatched))
    if event_type == "checkout.session.expired":
        moved = store.mark(order, "expired")
        return Outcome("expired" if moved else "unchanged", order.order_id)
    if event_type == "checkout.session.async_payment_failed":
        moved = store.mark(order, "failed")
        return Outcome("failed" if moved else "unchanged", order.order_id)
    if event_type == "checkout.session.completed" and session.get("payment_status") != "paid":
        # Delayed payment methods: the async_payment_succeeded event will follow.
        return Outcome("awaiting_payment", order.order_id)
    return _credit(order, session, store, ledger, credit_items)


def session_amounts(session: Mapping[str, Any]) -> PaidAmounts | None:
    """What a paid session charged: its subtotal, tax and total; None unless all are
    integers and add up (total = subtotal + tax, with no discount and no shipping)."""
    details = session.get("total_details") or {}
    subtotal, total = session.get("amount_subtotal"), session.get("amount_total")
    tax = details.get("amount_tax") or 0
    extras = [details.get("amount_discount") or 0, details.get("amount_shipping") or 0]
    numbers = [subtotal, total, tax, *extras]
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        return None
    assert isinstance(subtotal, int) and isinstance(total, int) and isinstance(tax, int)
    if any(extras) or tax < 0 or total != subtotal + tax:
        return None
    return PaidAmounts(subtotal_cents=subtotal, tax_cents=tax, total_cents=total)


def mismatches(order: Order, session: Mapping[str, Any]) -> list[str]:
    """Every way the paid session disagrees with the order it claims to pay for. Catalog
    prices are tax-exclusive: the subtotal must be the order's price, and the total that
    subtotal plus the tax Stripe added (tax may differ by address; the tokens never do)."""
    metadata = session.get("metadata") or {}
    found = []
    if session.get("amount_subtotal") != order.price_cents:
        found.append(f"amount {session.get('amount_subtotal')} != {order.price_cents}")
    elif session_amounts(session) is None:
        found.append(
            f"total {session.get('amount_total')} is not the subtotal plus tax "
            f"(details {session.get('total_details')})"
        )
    if str(session.get("currency", "")).lower() != order.currency:
        found.append(f"currency {session.get('currency')} != {order.currency}")
    if (
        metadata.get("customer_id") != order.customer_id
        or session.get("client_reference_id") != order.customer_id
    ):
        found.append("customer does not match the order")
    if metadata.get("package_id") != order.package_id:
        found.append(f"package {metadata.get('package_id')} != {order.package_id}")
    if order.session_id and session.get("id") != order.session_id:
        found.append("checkout session is not the order's")
    if metadata.get("order_id") not in (None, order.order_id):
        found.append(f"metadata names order {metadata.get('order_id')}, not {order.order_id}")
    return found


def _credit(
    order: Order,
    session: Mapping[str, Any],
    store: OrderStore,
    ledger: Ledger,
    credit_items: CreditItems | None,
) -> Outcome:
    problems = mismatches(order, session)
    if problems:
        reason = "; ".join(problems)
        store.mark(order, "flagged", flag_reason=reason)
        metrics.add_metric(name="AmountMismatches", unit=MetricUnit.Count, value=1)
        logger.error(
            "paid session does not match its order",
            extra={"order_id": order.order_id, "reason": reason},
        )
        return Outcome("flagged", order.order_id, reason)
    payment_intent = session.get("payment_intent")
    payment_intent_id = payment_intent if isinstance(payment_intent, str) else None
    extra_items: list[Mapping[str, Any]] = [
        store.paid_transition(
            order,
            payment_intent_id=payment_intent_id,
            session_id=str(session["id"]),
            amounts=session_amounts(session),
        )
    ]
    if payment_intent_id:
        extra_items.append(store.payment_link(order, payment_intent_id))
    if credit_items is not None:
        extra_items.extend(credit_items(order))
    try:
        posted = credit_order(ledger, order, extra_items)
    except ExtraConditionFailed:
        current = store.get(order.customer_id, order.order_id)
        logger.error(
            "order could not be credited",
            extra={"order_id": order.order_id, "status": current.status},
        )
        metrics.add_metric(name="CreditRefusedByOrderState", unit=MetricUnit.Count, value=1)
        return Outcome("not_credited", order.order_id, f"order is {current.status}")
    if posted.replayed:
        return Outcome("already_credited", order.order_id)
    metrics.add_metric(name="TokensCreditedMt", unit=MetricUnit.Count, value=posted.amount_mt)
    return Outcome("credited", order.order_id)


def claw_back_refund(charge: Mapping[str, Any], store: OrderStore, ledger: Ledger) -> Outcome:
    """`charge.refunded`: the refunded share of the credited tokens, from the cumulative
    `amount_refunded`."""
    order = order_of_payment(charge, store)
    if order is None:
        return Outcome("ignored", detail="refund of a payment this service did not credit")
    refunded = int(charge.get("amount_refunded") or 0)
    key = f"refund:{charge.get('id')}:{refunded}"
    return apply_clawback(
        order, store, ledger, key=key, refunded_cents=refunded, disputed_cents=None
    )


def claw_back_dispute(dispute: Mapping[str, Any], store: OrderStore, ledger: Ledger) -> Outcome:
    """`charge.dispute.created`: the disputed share of the credited tokens."""
    order = order_of_payment(dispute, store)
    if order is None:
        return Outcome("ignored", detail="dispute of a payment this service did not credit")
    key = f"dispute:{dispute.get('id')}"
    amount = int(dispute.get("amount") or 0)
    return apply_clawback(order, store, ledger, key=key, refunded_cents=None, disputed_cents=amount)


def clawback_target_mt(order: Order, refunded_cents: int, disputed_cents: int) -> int:
    """Tokens to take back in total: the refunded or disputed share of what was credited,
    rounded up, and never more than was credited."""
    covered = min(order.price_cents, refunded_cents + disputed_cents)
    return -(-order.total_mt * covered // order.price_cents)


def apply_clawback(
    order: Order,
    store: OrderStore,
    ledger: Ledger,
    *,
    key: str,
    refunded_cents: int | None,
    disputed_cents: int | None,
) -> Outcome:
    """Bring the order's clawed-back total up to its refunded/disputed share, atomically
    with the order's bookkeeping; concurrent events on one order retry on fresh state."""
    for _ in range(CLAWBACK_ATTEMPTS):
        if order.status not in PAID_STATUSES:  # only credited tokens are clawed back
            # Nothing was credited yet; Stripe retries a failed delivery, so ask it to.
            raise ServiceUnavailable(f"order {order.order_id} is {order.status}: not credited yet")
        refunded = max(order.refunded_cents, refunded_cents or 0)
        disputed = max(order.disputed_cents, disputed_cents or 0)
        target_mt = clawback_target_mt(order, refunded, disputed)
        delta_mt = target_mt - order.clawed_back_mt
        status = (
            "disputed"
            if disputed
            else "refunded"
            if refunded >= order.price_cents
            else "partially_refunded"
        )
        transition = store.clawback_transition(
            order,
            refunded_cents=refunded,
            disputed_cents=disputed,
            clawed_back_mt=max(target_mt, order.clawed_back_mt),
            status=status,
        )
        try:
            if delta_mt <= 0:
                if (refunded, disputed) == (order.refunded_cents, order.disputed_cents):
                    return Outcome("already_clawed_back", order.order_id)
                store.apply(transition)
                return Outcome("recorded", order.order_id)
            posted = ledger.clawback(
                customer_id=order.customer_id,
                idempotency_key=key,
                amount_mt=delta_mt,
                canonical_request=key,
                cause={"order_id": order.order_id, "reason": key.split(":", 1)[0]},
                extra_items=[transition],
            )
        except (ExtraConditionFailed, OrderConditionFailed):
            order = store.get(order.customer_id, order.order_id)
            continue
        if posted.replayed:
            return Outcome("already_clawed_back", order.order_id)
        metrics.add_metric(name="TokensClawedBackMt", unit=MetricUnit.Count, value=delta_mt)
        return Outcome("clawed_back", order.order_id, f"{delta_mt} mt")
    raise ServiceUnavailable("the order changed while clawing back; Stripe will retry")
