"""An order's invoice and receipt, from verified Stripe events only.

- `checkout.session.completed` names the invoice Checkout created (`invoice`);
- `invoice.finalized` / `invoice.paid` of a paid invoice carry its number, hosted page and
  PDF (an unpaid one is not the order's document: a failed auto top-up voids it); the
  invoice's metadata (set by us: Checkout's `invoice_data.metadata`, the auto top-up's
  invoice) names the order;
- `charge.succeeded` carries the receipt; the charge's metadata (Stripe copies the
  PaymentIntent's) or the payment intent -> order record names the order.

Any order of arrival, any number of redeliveries, before the credit or after: each event
writes what it knows through one conditional update keyed by the document's id
(`store/order_documents.py`), which moves no tokens and never overwrites. The credit stays
the exactly-once order path of `payments.py`. An event that names an order of ours we cannot
match (missing, or disagreeing with it) is never silent: a support item, the metric
`UnmatchedPayments` (alarmed) and an error log. Objects of other integrations on the same
Stripe account (no order of ours in their metadata) are ignored.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from token_billing.core.errors import ServiceUnavailable
from token_billing.core.observability import MetricUnit, logger, metrics
from token_billing.domain.event_outcome import Outcome
from token_billing.domain.session_orders import (
    OUR_ORDER_ID,
    nonempty_text,
    order_of_payment,
)
from token_billing.store.order_documents import (
    DocumentWrite,
    InvoiceDetails,
    OrderDocuments,
    ReceiptDetails,
)
from token_billing.store.order_records import Order
from token_billing.store.orders import OrderStore
from token_billing.store.top_up_store import TopUpStore
from token_billing.store.unmatched_payments import UnmatchedPayment, UnmatchedPayments


class DocumentStores:
    """What recording a document reads and writes; the writers are made on first use (an
    event of another integration is ignored without touching any)."""

    def __init__(
        self,
        orders: OrderStore,
        unmatched: UnmatchedPayments | None = None,
        top_ups: TopUpStore | None = None,
    ) -> None:
        self.orders = orders
        self.top_ups = top_ups  # tells a Stripe Customer of ours (auto top-up's)
        self._unmatched = unmatched
        self._documents: OrderDocuments | None = None

    @property
    def documents(self) -> OrderDocuments:
        if self._documents is None:
            self._documents = OrderDocuments(self.orders.client, self.orders.table_name)
        return self._documents

    @property
    def unmatched(self) -> UnmatchedPayments:
        if self._unmatched is None:
            self._unmatched = UnmatchedPayments(self.orders.client, self.orders.table_name)
        return self._unmatched


# How long a charge of our Stripe customer may wait for its invoice payment's link.
RECEIPT_WAIT_S = 24 * 3600


def _cents(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def invoice_tax_cents(invoice: Mapping[str, Any]) -> int | None:
    """The tax an invoice bills: the sum of `total_taxes` (Stripe's API since 2025), else
    the older `tax` field, else total minus total excluding tax."""
    taxes = invoice.get("total_taxes")
    if isinstance(taxes, list):
        amounts = [_cents(tax.get("amount")) for tax in taxes if isinstance(tax, Mapping)]
        if all(amount is not None for amount in amounts):
            return sum(amount for amount in amounts if amount is not None)
    if _cents(invoice.get("tax")) is not None:
        return _cents(invoice.get("tax"))
    total, untaxed = _cents(invoice.get("total")), _cents(invoice.get("total_excluding_tax"))
    return None if total is None or untaxed is None else total - untaxed


def invoice_mismatches(order: Order, invoice: Mapping[str, Any]) -> list[str]:
    """Every way an invoice disagrees with the order its metadata names: it bills the
    order's catalog price (before tax) in the order's currency, for its customer and package."""
    metadata = _metadata(invoice)
    found = []
    if metadata.get("customer_id") != order.customer_id:
        found.append("customer does not match the order")
    if metadata.get("package_id") not in (None, order.package_id):
        found.append(f"package {metadata.get('package_id')} != {order.package_id}")
    if str(invoice.get("currency", "")).lower() != order.currency:
        found.append(f"currency {invoice.get('currency')} != {order.currency}")
    subtotal = _cents(invoice.get("subtotal"))
    if subtotal is not None and subtotal != order.price_cents:
        found.append(f"subtotal {subtotal} != {order.price_cents}")
    return found


def record_session_invoice(
    event_id: str, session: Mapping[str, Any], order: Order, stores: DocumentStores
) -> None:
    """The invoice Checkout created for a session of this order (its id only: the invoice's
    own events bring the number and links)."""
    invoice_id = nonempty_text(session.get("invoice"))
    if invoice_id is None:
        return
    written, named = stores.documents.record_invoice(
        order.customer_id, order.order_id, InvoiceDetails(invoice_id)
    )
    if written == "conflict":
        reason = f"checkout session names invoice {invoice_id}; the order has {named}"
        _unmatched(
            stores, "invoice", invoice_id, event_id, order.customer_id, order.order_id, reason
        )


def invoice_event(event_id: str, invoice: Mapping[str, Any], stores: DocumentStores) -> Outcome:
    """`invoice.finalized` / `invoice.paid`: a paid invoice's number, page and PDF."""
    metadata = _metadata(invoice)
    invoice_id = nonempty_text(invoice.get("id"))
    order_id, customer_id = (
        nonempty_text(metadata.get("order_id")),
        nonempty_text(metadata.get("customer_id")),
    )
    if invoice_id is None or order_id is None or not OUR_ORDER_ID.fullmatch(order_id):
        return Outcome("ignored", detail="not an invoice of this service")
    order = stores.orders.find(customer_id, order_id) if customer_id else None
    if order is None:
        reason = f"no order {order_id} for customer {customer_id}"
        return _unmatched(stores, "invoice", invoice_id, event_id, customer_id, order_id, reason)
    if invoice.get("status") != "paid":
        # Only a paid invoice is the order's document: an auto top-up's invoice whose payment
        # fails is voided, and a recovery Checkout invoices the order anew.
        return Outcome("invoice_unpaid", order.order_id)
    problems = invoice_mismatches(order, invoice)
    if problems:
        reason = "; ".join(problems)
        return _unmatched(stores, "invoice", invoice_id, event_id, customer_id, order_id, reason)
    details = InvoiceDetails(
        invoice_id,
        number=nonempty_text(invoice.get("number")),
        hosted_url=nonempty_text(invoice.get("hosted_invoice_url")),
        pdf_url=nonempty_text(invoice.get("invoice_pdf")),
    )
    written, named = stores.documents.record_invoice(order.customer_id, order.order_id, details)
    return _recorded(stores, "invoice", written, named, order, invoice_id, event_id)


def charge_succeeded(event_id: str, charge: Mapping[str, Any], stores: DocumentStores) -> Outcome:
    """`charge.succeeded`: the order's receipt."""
    charge_id = nonempty_text(charge.get("id"))
    metadata = _metadata(charge)
    order = order_of_payment(charge, stores.orders)
    claimed_order = nonempty_text(metadata.get("order_id"))
    claimed_customer = nonempty_text(metadata.get("customer_id"))
    if charge_id is None:
        return Outcome("ignored", detail="not a charge of this service")
    if order is None and not _names_our_order(claimed_order):
        if not _awaits_its_invoice_payment(charge, stores):
            return Outcome("ignored", detail="not a charge of this service")
        reason = "a charge of our Stripe customer that no order names"
        return _unmatched(stores, "charge", charge_id, event_id, None, None, reason)
    if order is None:
        reason = f"no order {claimed_order} for customer {claimed_customer}"
        return _unmatched(
            stores, "charge", charge_id, event_id, claimed_customer, claimed_order, reason
        )
    problems = charge_mismatches(order, charge)
    if problems:
        reason = "; ".join(problems)
        return _unmatched(
            stores, "charge", charge_id, event_id, order.customer_id, order.order_id, reason
        )
    receipt = ReceiptDetails(charge_id, nonempty_text(charge.get("receipt_url")))
    written, named = stores.documents.record_receipt(order.customer_id, order.order_id, receipt)
    return _recorded(stores, "charge", written, named, order, charge_id, event_id)


def _awaits_its_invoice_payment(charge: Mapping[str, Any], stores: DocumentStores) -> bool:
    """Whether a charge no order names yet is one of ours: a charge of a Stripe Customer of
    ours carries no metadata when it pays an auto top-up's invoice, and its order is known
    once `invoice_payment.paid` links its payment intent. Until then (a day at most) Stripe
    is asked to redeliver it (503); after that it is recorded for support (True)."""
    stripe_customer = nonempty_text(charge.get("customer"))
    if stores.top_ups is None or stripe_customer is None:
        return False
    if stores.top_ups.customer_of(stripe_customer_id=stripe_customer) is None:
        return False
    created = _cents(charge.get("created")) or 0
    if time.time() - created < RECEIPT_WAIT_S:
        raise ServiceUnavailable("the charge's invoice payment is not linked yet; redeliver")
    return True


def invoice_payment_paid(
    event_id: str, invoice_payment: Mapping[str, Any], stores: DocumentStores
) -> Outcome:
    """`invoice_payment.paid`: which payment intent paid an invoice of ours. An auto top-up's
    invoice (linked to its order by the charger before it paid) gets the payment intent ->
    order record that its receipt, refunds and disputes are found by. Checkout's invoices
    need none (the session names its payment intent); other invoices are not ours."""
    invoice_id = nonempty_text(invoice_payment.get("invoice"))
    payment = invoice_payment.get("payment")
    payment_intent = (
        nonempty_text(payment.get("payment_intent")) if isinstance(payment, Mapping) else None
    )
    if invoice_id is None or payment_intent is None or invoice_payment.get("status") != "paid":
        return Outcome("ignored", detail="not a paid invoice payment")
    linked = stores.documents.order_of_invoice(invoice_id)
    order = stores.orders.find(*linked) if linked else None
    if order is None:
        return Outcome("ignored", detail="not an invoice an auto top-up made")
    if not stores.orders.link_payment(order, payment_intent):
        reason = f"payment intent {payment_intent} names another order"
        return _unmatched(
            stores, "invoice", invoice_id, event_id, order.customer_id, order.order_id, reason
        )
    return Outcome("payment_linked", order.order_id)


def charge_mismatches(order: Order, charge: Mapping[str, Any]) -> list[str]:
    """Every way a successful charge disagrees with the order it is found for."""
    found = []
    if str(charge.get("currency", "")).lower() != order.currency:
        found.append(f"currency {charge.get('currency')} != {order.currency}")
    payment_intent = nonempty_text(charge.get("payment_intent"))
    if order.payment_intent_id and payment_intent != order.payment_intent_id:
        found.append(f"payment intent {payment_intent} is not the order's")
    amount = _cents(charge.get("amount"))
    if order.total_cents is not None and amount != order.total_cents:
        found.append(f"amount {amount} != the order's total {order.total_cents}")
    return found


def _names_our_order(order_id: str | None) -> bool:
    return order_id is not None and OUR_ORDER_ID.fullmatch(order_id) is not None


def _recorded(
    stores: DocumentStores,
    kind: str,
    written: DocumentWrite,
    named: str | None,
    order: Order,
    document_id: str,
    event_id: str,
) -> Outcome:
    if written == "conflict":
        reason = f"the order has {kind} {named}, not {document_id}"
        return _unmatched(
            stores, kind, document_id, event_id, order.customer_id, order.order_id, reason
        )
    if written == "missing":  # deleted between the read and the write: nothing to attach to
        reason = f"order {order.order_id} is gone"
        return _unmatched(
            stores, kind, document_id, event_id, order.customer_id, order.order_id, reason
        )
    return Outcome(f"{kind}_{written}", order.order_id)


def _unmatched(
    stores: DocumentStores,
    kind: str,
    object_id: str,
    event_id: str,
    customer_id: str | None,
    order_id: str | None,
    reason: str,
) -> Outcome:
    """Record a document we cannot attach to its order for support, once per object."""
    first = stores.unmatched.record(
        UnmatchedPayment(
            object_id=object_id,
            event_id=event_id,
            claimed_customer_id=customer_id,
            claimed_order_id=order_id,
            claimed_package_id=None,
            amount_total_cents=None,
            currency=None,
            payment_intent_id=None,
            object_kind=kind,
            reason=reason,
        )
    )
    if first:
        metrics.add_metric(name="UnmatchedPayments", unit=MetricUnit.Count, value=1)
    logger.error(
        f"{kind} names an order we cannot match; recorded for support",
        extra={"object_id": object_id, "order_id": order_id, "reason": reason},
    )
    return Outcome("unmatched", order_id, f"{kind} {object_id}: {reason}")
