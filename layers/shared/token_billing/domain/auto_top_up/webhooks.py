"""The Stripe events auto top-up listens to, from the verified webhook only.

- `payment_method.attached` to our customer's Stripe Customer: the saved card (its id comes
  from here, never from a client); a new card clears a pause.
- `payment_method.detached`: the card is gone, auto top-up is disabled and says why.
- `payment_intent.succeeded` of an auto top-up order (metadata `kind = auto_top_up`): the
  credit, through the same exactly-once order path as a Checkout purchase (one transaction:
  order pending -> paid, balance + tokens, the entry keyed by the order, the payment-intent
  -> order record that refunds and disputes find).
- `invoice.paid` of an auto top-up's invoice (StripeInvoices=true, the same metadata): the
  same credit; the payment-intent -> order record comes from `invoice_payment.paid`
  (`domain/billing_documents.py`), since an invoice names no payment intent.
- after a recovery Checkout (metadata `kind = auto_top_up_recovery`) is credited by the
  ordinary session path: the successful payment clears the pause.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from token_billing.core.clock import utc_now_iso
from token_billing.core.observability import MetricUnit, logger, metrics
from token_billing.domain.auto_top_up.vocabulary import KIND, RECOVERY_KIND
from token_billing.domain.billing_documents import invoice_tax_cents
from token_billing.domain.event_outcome import Outcome
from token_billing.domain.payments import credit_order
from token_billing.store.ledger import Ledger
from token_billing.store.order_records import Order, PaidAmounts
from token_billing.store.orders import OrderStore
from token_billing.store.top_up_records import SavedCard
from token_billing.store.top_up_store import TopUpStore
from token_billing.store.transactions import ExtraConditionFailed


def payment_intent_succeeded(
    pi: Mapping[str, Any], *, orders: OrderStore, ledger: Ledger, top_ups: TopUpStore
) -> Outcome:
    """An auto top-up's payment credits its order; any other PaymentIntent is only
    acknowledged (Checkout's own session events credit those, never this one)."""
    metadata = pi.get("metadata") or {}
    if metadata.get("kind") != KIND:
        return Outcome("acknowledged", detail="credits come from checkout.session events")
    return _credit_payment_intent(pi, orders, ledger, top_ups)


def recovery_credit_items(
    session: Mapping[str, Any], order: Order, *, top_ups: TopUpStore
) -> list[dict[str, Any]]:
    """What the credit of a recovery Checkout's order writes with it: the end of the pause
    it was made for (nothing for any other session)."""
    metadata = session.get("metadata") or {}
    if metadata.get("kind") != RECOVERY_KIND or order.kind != KIND:
        return []
    return [top_ups.clear_pause_item(order.customer_id)]


def after_recovery_checkout(
    session: Mapping[str, Any], outcome: Outcome, *, orders: OrderStore, top_ups: TopUpStore
) -> None:
    """A recovery Checkout was credited (its credit ended the pause): its attempt says so,
    on every delivery, so a crash after the credit is made good by the redelivery."""
    if outcome.action not in ("credited", "already_credited") or not outcome.order_id:
        return
    metadata = session.get("metadata") or {}
    if metadata.get("kind") != RECOVERY_KIND:
        return
    order = orders.find(str(metadata.get("customer_id")), outcome.order_id)
    if order is None or order.kind != KIND:
        return
    record_paid(order, top_ups)
    if order.attempt_version is not None:
        top_ups.mark_recovered(order.customer_id, order.attempt_version)
    logger.info("auto top-up recovered on-session", extra={"order_id": order.order_id})


def record_paid(order: Order, top_ups: TopUpStore) -> None:
    """An auto top-up order was credited: its attempt says so, and converges on `succeeded`
    if its end said the answer was lost or pending (whichever of the credit and the end
    comes last does it). The pause was cleared by the credit itself (its transaction)."""
    if order.attempt_version is not None:
        top_ups.mark_credited(order.customer_id, order.attempt_version)
        top_ups.mark_paid_after_all(order.customer_id, order.attempt_version)


def card_attached(pm: Mapping[str, Any], *, top_ups: TopUpStore) -> Outcome:
    """`payment_method.attached` to our customer's Stripe Customer: the saved card."""
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


def card_detached(pm: Mapping[str, Any], *, top_ups: TopUpStore) -> Outcome:
    """`payment_method.detached`: the card is gone, auto top-up off and says why."""
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
    found = []
    received = pi.get("amount_received", pi.get("amount"))
    if received != order.price_cents or pi.get("amount") != order.price_cents:
        found.append(f"amount {received} != {order.price_cents}")
    return found + _order_mismatches(order, pi)


def _credit_payment_intent(
    pi: Mapping[str, Any], orders: OrderStore, ledger: Ledger, top_ups: TopUpStore
) -> Outcome:
    order, pi_id = _order_named(pi, orders), pi.get("id")
    if order is None or not isinstance(pi_id, str):
        return Outcome("ignored", detail="not an order of this service")
    transition = orders.paid_transition(
        order, payment_intent_id=pi_id, session_id=None, amounts=_amounts(pi)
    )
    return _credit(
        order,
        payment_intent_mismatches(order, pi),
        [transition, orders.payment_link(order, pi_id)],
        orders,
        ledger,
        top_ups,
    )


def invoice_paid(
    invoice: Mapping[str, Any], *, orders: OrderStore, ledger: Ledger, top_ups: TopUpStore
) -> Outcome:
    """`invoice.paid` of an auto top-up's invoice (StripeInvoices=true): the credit, through
    the same exactly-once order path. The invoice names no payment intent: its
    `invoice_payment.paid` records the payment intent -> order link refunds need. Any
    other invoice credits nothing (a Checkout's session credits its order)."""
    if (invoice.get("metadata") or {}).get("kind") != KIND:
        return Outcome("acknowledged", detail="credits come from checkout.session events")
    order = _order_named(invoice, orders)
    if order is None:
        return Outcome("ignored", detail="not an order of this service")
    amounts = invoice_amounts(invoice)
    transition = orders.paid_transition(
        order, payment_intent_id=None, session_id=None, amounts=amounts
    )
    problems = invoice_payment_mismatches(order, invoice, amounts)
    return _credit(order, problems, [transition], orders, ledger, top_ups)


def invoice_amounts(invoice: Mapping[str, Any]) -> PaidAmounts | None:
    """What a paid invoice charged: subtotal, tax and total; None unless they add up
    (total = subtotal + tax: nothing discounted) and were paid in full."""
    subtotal, total, paid = (
        invoice.get("subtotal"),
        invoice.get("total"),
        invoice.get("amount_paid"),
    )
    tax = invoice_tax_cents(invoice)
    numbers = (subtotal, total, paid, tax)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        return None
    assert isinstance(subtotal, int) and isinstance(total, int) and isinstance(tax, int)
    if tax < 0 or total != subtotal + tax or paid != total:
        return None
    return PaidAmounts(subtotal_cents=subtotal, tax_cents=tax, total_cents=total)


def invoice_payment_mismatches(
    order: Order, invoice: Mapping[str, Any], amounts: PaidAmounts | None
) -> list[str]:
    """Every way the paid invoice disagrees with the auto top-up order: it must bill the
    catalog price x packs before tax (tax may differ by address; the tokens never do)."""
    found = [] if amounts is not None else ["total is not the subtotal plus tax, paid in full"]
    if invoice.get("subtotal") != order.price_cents:
        found.append(f"amount {invoice.get('subtotal')} != {order.price_cents}")
    return found + _order_mismatches(order, invoice)


def _order_mismatches(order: Order, paid: Mapping[str, Any]) -> list[str]:
    metadata = paid.get("metadata") or {}
    found = []
    if str(paid.get("currency", "")).lower() != order.currency:
        found.append(f"currency {paid.get('currency')} != {order.currency}")
    if metadata.get("customer_id") != order.customer_id:
        found.append("customer does not match the order")
    if metadata.get("package_id") != order.package_id:
        found.append(f"package {metadata.get('package_id')} != {order.package_id}")
    if metadata.get("packs") != str(order.packs):
        found.append(f"packs {metadata.get('packs')} != {order.packs}")
    if order.kind != KIND:
        found.append(f"order is a {order.kind}, not an auto top-up")
    return found


def _order_named(paid: Mapping[str, Any], orders: OrderStore) -> Order | None:
    metadata = paid.get("metadata") or {}
    customer_id, order_id = metadata.get("customer_id"), metadata.get("order_id")
    if not isinstance(customer_id, str) or not isinstance(order_id, str):
        return None
    return orders.find(customer_id, order_id)


def _credit(
    order: Order,
    problems: list[str],
    extra_items: list[dict[str, Any]],
    orders: OrderStore,
    ledger: Ledger,
    top_ups: TopUpStore,
) -> Outcome:
    """Credit an auto top-up order once (or flag it when its payment disagrees with it)."""
    if problems:
        reason = "; ".join(problems)
        orders.mark(order, "flagged", flag_reason=reason)
        metrics.add_metric(name="AmountMismatches", unit=MetricUnit.Count, value=1)
        logger.error("auto top-up payment does not match its order", extra={"reason": reason})
        return Outcome("flagged", order.order_id, reason)
    # A successful payment clears a pause (e.g. an attempt that timed out, then went through)
    # in the credit's own transaction: once, even if the reply to it is lost; a redelivery
    # is no new payment and leaves a pause a later failure set.
    try:
        posted = credit_order(
            ledger, order, [*extra_items, top_ups.clear_pause_item(order.customer_id)]
        )
    except ExtraConditionFailed:
        current = orders.get(order.customer_id, order.order_id)
        metrics.add_metric(name="CreditRefusedByOrderState", unit=MetricUnit.Count, value=1)
        return Outcome("not_credited", order.order_id, f"order is {current.status}")
    record_paid(order, top_ups)
    if posted.replayed:
        return Outcome("already_credited", order.order_id)
    metrics.add_metric(name="TokensCreditedMt", unit=MetricUnit.Count, value=posted.amount_mt)
    return Outcome("credited", order.order_id)


def _amounts(pi: Mapping[str, Any]) -> PaidAmounts:
    """A PaymentIntent bills the catalog price alone: no tax (Stripe Tax needs an invoice)."""
    amount = int(pi.get("amount_received") or pi.get("amount") or 0)
    return PaidAmounts(subtotal_cents=amount, tax_cents=0, total_cents=amount)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
