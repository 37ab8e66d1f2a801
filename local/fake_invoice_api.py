"""The offline Stripe's invoice API, as the auto top-up charger uses it (StripeInvoices=true):
a draft (POST /v1/invoices), its line (POST /v1/invoiceitems), finalized
(POST /v1/invoices/{id}/finalize), paid off-session (POST /v1/invoices/{id}/pay), voided
(POST /v1/invoices/{id}/void), found again (GET /v1/invoices/search).

Checked the way the service must send them, as the fake checks off-session PaymentIntents
(a wrong request is a 400 and a recorded violation): an idempotency key on every request,
`auto_advance: false`, pending items excluded, one line of the catalog price x the packs
the metadata names, an off-session payment with the customer's own saved card. Paying
behaves as Stripe's test cards do and sends the events Stripe sends: `invoice.finalized`,
then `invoice_payment.paid`, `invoice.paid`, `charge.succeeded` (a charge of an invoice
carries no metadata), or `invoice.payment_failed`.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import TYPE_CHECKING, Any

from local.fake_invoices import TEST_CARDS
from token_billing.domain.catalog import UnknownCatalogItem, get_package

if TYPE_CHECKING:
    from local.fake_stripe import FakeStripe

INVOICE_ACTION = re.compile(r"/v1/invoices/([\w-]+)/(finalize|pay|void)")
Answer = tuple[int, dict[str, Any]]


def route_invoice_api(
    stripe: FakeStripe, method: str, path: str, params: dict[str, Any], key: str | None
) -> Answer | None:
    """The answer to an invoice API request, or None when `path` is no invoice route."""
    if method == "POST" and path == "/v1/invoices":
        return _create(stripe, params, key)
    if method == "POST" and path == "/v1/invoiceitems":
        return _add_item(stripe, params, key)
    if method == "GET" and path == "/v1/invoices/search":
        invoices = stripe.invoicing.invoices.values()
        return 200, stripe.search(invoices, str(params.get("query", "")))
    action = INVOICE_ACTION.fullmatch(path)
    if method != "POST" or action is None:
        return None
    invoice = stripe.invoicing.invoices.get(action.group(1))
    if invoice is None:
        return 404, _error(f"No such invoice: '{action.group(1)}'")
    if not key:
        return stripe.violation("every invoice request of the charger needs an idempotency key")
    if action.group(2) == "finalize":
        return _finalize(stripe, invoice, params)
    if action.group(2) == "void":
        if invoice["status"] != "open":
            return 400, _error("You can only void an open invoice")
        return 200, stripe.invoicing.void(invoice)
    return _pay(stripe, invoice, params)


def _create(stripe: FakeStripe, params: dict[str, Any], key: str | None) -> Answer:
    metadata = params.get("metadata") or {}
    if not key:
        return stripe.violation("an auto top-up invoice needs an idempotency key")
    if params.get("auto_advance") != "false":
        return stripe.violation("the charger pays its invoice itself: auto_advance=false")
    if params.get("pending_invoice_items_behavior") != "exclude":
        return stripe.violation("pending_invoice_items_behavior must be exclude")
    customer = stripe.customers.get(str(params.get("customer")))
    if customer is None:
        return 400, _error(f"No such customer: '{params.get('customer')}'")
    if _catalog_amount(metadata) is None:
        return stripe.violation("invoice metadata must name the package and the packs")
    return 200, stripe.invoicing.draft(customer, params, str(params.get("currency") or "usd"))


def _add_item(stripe: FakeStripe, params: dict[str, Any], key: str | None) -> Answer:
    invoice = stripe.invoicing.invoices.get(str(params.get("invoice")))
    if not key:
        return stripe.violation("an invoice item needs an idempotency key")
    if invoice is None or invoice["status"] != "draft":
        return stripe.violation("an invoice item goes on a draft invoice of the charger")
    if invoice["customer"] != params.get("customer"):
        return stripe.violation("the invoice item's customer is not the invoice's")
    quantity = int(params.get("quantity") or 1)
    unit = int(params.get("unit_amount_decimal") or 0)
    expected = _catalog_amount(invoice["metadata"])
    if quantity != int(invoice["metadata"].get("packs") or 0) or unit * quantity != expected:
        return stripe.violation(f"{quantity} x {unit} is not the catalog's {expected}")
    stripe.invoicing.add_line(
        invoice, description=str(params.get("description")), quantity=quantity, unit_amount=unit
    )
    item = {"id": "ii_local_" + secrets.token_hex(8), "object": "invoiceitem", **params}
    return 200, item


def _finalize(stripe: FakeStripe, invoice: dict[str, Any], params: dict[str, Any]) -> Answer:
    if invoice["status"] != "draft":
        return 400, _error("This invoice is already finalized")
    if params.get("auto_advance") != "false":
        return stripe.violation("finalize with auto_advance=false: the charger pays it")
    finalized = stripe.invoicing.finalize(invoice, stripe.customers[invoice["customer"]])
    stripe.emit("invoice.finalized", dict(finalized))
    return 200, finalized


def _pay(stripe: FakeStripe, invoice: dict[str, Any], params: dict[str, Any]) -> Answer:
    """Pay an open invoice off-session with a saved test card, as Stripe's cards behave."""
    pm = stripe.payment_methods.get(str(params.get("payment_method")))
    if params.get("off_session") != "true":
        return stripe.violation("auto top-up pays its invoice with off_session=true")
    if pm is None or pm["customer"] != invoice["customer"]:
        return stripe.violation("payment_method is not attached to the invoice's customer")
    if invoice["status"] == "paid":
        return 400, _error("Invoice is already paid")
    if invoice["status"] != "open":
        return 400, _error(f"You cannot pay an invoice that is {invoice['status']}")
    outcome = TEST_CARDS[pm["test_card"]]["outcome"]
    if outcome != "succeeded":
        stripe.emit("invoice.payment_failed", dict(invoice))
        declined = outcome == "card_declined"
        error = {
            "type": "card_error",
            "code": outcome,
            "decline_code": "generic_decline" if declined else outcome,
            "message": "Your card was declined."
            if declined
            else "Your card requires authentication.",
        }
        return 402, {"error": error}
    intent_id = "pi_local_" + secrets.token_hex(12)
    amount = int(invoice["total"])
    charge = stripe.invoicing.charge(
        amount=amount,
        currency=str(invoice["currency"]),
        customer=str(invoice["customer"]),
        payment_intent=intent_id,
        card=pm["card"],
        metadata={},  # an invoice's PaymentIntent carries none of the invoice's metadata
    )
    stripe.payment_intents[intent_id] = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount,
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "payment_method": pm["id"],
        "metadata": {},
        "status": "succeeded",
        "latest_charge": charge["id"],
        "created": int(time.time()),
        "livemode": False,
    }
    paid = stripe.invoicing.mark_paid(invoice)
    stripe.emit("payment_intent.succeeded", dict(stripe.payment_intents[intent_id]))
    stripe.emit(
        "invoice_payment.paid",
        {
            "id": "inpay_local_" + secrets.token_hex(8),
            "object": "invoice_payment",
            "amount_paid": amount,
            "currency": invoice["currency"],
            "invoice": invoice["id"],
            "is_default": True,
            "payment": {"type": "payment_intent", "payment_intent": intent_id},
            "status": "paid",
        },
    )
    stripe.emit("invoice.paid", dict(paid))
    stripe.emit("charge.succeeded", dict(charge))
    return 200, paid


def _catalog_amount(metadata: dict[str, Any]) -> int | None:
    try:
        amount = get_package(str(metadata.get("package_id"))).price_cents * int(
            metadata.get("packs") or 0
        )
    except (UnknownCatalogItem, ValueError):
        return None
    return amount if amount > 0 else None


def _error(message: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "message": message}}
