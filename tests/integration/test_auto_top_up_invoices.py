"""Auto top-up paid by invoice (StripeInvoices=true, the default; issue 26), end to end on
one machine as in test_auto_top_up.py: the charger opens one invoice for the packs, pays it
off-session, and the webhook credits it from `invoice.paid` through the exactly-once order
path. Every guard rail holds as for a bare PaymentIntent: declines count and pause,
authentication pauses with a recovery link, provider outages are never declines, a retry
never makes a second invoice or charge; and the invoice, its PDF and the receipt reach the
order."""

from __future__ import annotations

import io
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

import pytest
from pypdf import PdfReader

from local.devserver import DevServer
from tests import stripe_events
from tests.conftest import FakeLambdaContext
from tests.integration import test_auto_top_up as base
from tests.integration.helpers import assert_consistent, fund
from tests.integration.test_auto_top_up import (
    ROUTE,
    STARTER_CENTS,
    STARTER_MT,
    api,
    bus_event,
    credited,
    debit,
    enable,
    ended,
    purchase_credits,
    save_card,
    wait_for,
)
from tests.integration.test_top_up_charger_edges import admitted
from token_billing.domain.auto_top_up import charge
from token_billing.domain.auto_top_up.payment_requests import invoice_params
from token_billing.domain.auto_top_up.webhooks import invoice_paid
from token_billing.domain.billing_settings import BillingSettings
from token_billing.domain.reconcile import reconcile
from token_billing.integrations.off_session_payment import OffSessionResult
from token_billing.store.ledger import Ledger
from token_billing.store.orders import OrderStore
from token_billing.store.top_up_records import Attempt
from token_billing.store.top_up_store import TopUpStore
from token_billing.store.unmatched_payments import UnmatchedPayments

pytestmark = pytest.mark.integration
# The dev server with its stream pollers, the environment and the stores of the PaymentIntent
# module: the same machinery, with StripeInvoices on.
server = base.server
environment = base.environment
top_ups = base.top_ups
orders = base.orders
GROWTH_MT = 6_500_000
GROWTH_CENTS = 4_900


@pytest.fixture(autouse=True)
def invoices_on(environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_INVOICES", "true")


def requests_of(server: DevServer, customer_id: str, path_end: str) -> list[dict[str, Any]]:
    """The fake Stripe's requests ending in `path_end` for this customer's invoices."""
    invoices = server.fake_stripe.invoicing.invoices
    mine = {i for i, inv in invoices.items() if inv["metadata"].get("customer_id") == customer_id}
    found = []
    for request in list(server.fake_stripe.requests):
        path, params = request["path"], request["params"]
        named = params.get("metadata", {}).get("customer_id") == customer_id
        if path.endswith(path_end) and (named or any(i in path for i in mine)):
            found.append(request)
    return found


def invoices_of(server: DevServer, customer_id: str) -> list[dict[str, Any]]:
    """The auto top-up invoices the fake Stripe holds for this customer."""
    return [
        invoice
        for invoice in list(server.fake_stripe.invoicing.invoices.values())
        if invoice["metadata"].get("kind") == "auto_top_up"
        and invoice["metadata"].get("customer_id") == customer_id
    ]


def pdf_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        assert response.headers["Content-Type"] == "application/pdf"
        document = response.read()
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)


def test_three_growth_packs_are_one_invoice_paid_off_session_listed_with_its_pdf(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore, ledger: Ledger
) -> None:
    save_card(server, customer_id)  # 2,000 tokens; billed to the page's default buyer
    enable(server, customer_id, package_id="growth", threshold="1500", target="17650")
    debit(customer_id, "cross", 600)  # available 1,400: a gap of 2.5 Growth packs
    (attempt,) = ended(top_ups, customer_id)
    assert (attempt.status, attempt.packs) == ("succeeded", 3)
    assert attempt.order_id
    credited(orders, customer_id, attempt.order_id)

    (invoice,) = invoices_of(server, customer_id)
    assert invoice["status"] == "paid"
    assert invoice["auto_advance"] is False
    assert [(line["quantity"], line["amount"]) for line in invoice["lines"]["data"]] == [
        (3, 3 * GROWTH_CENTS)
    ]
    key = f"local:{attempt.attempt_id}"
    for step, path_end in (
        ("invoice", "/v1/invoices"),
        ("item-0", "/v1/invoiceitems"),
        ("finalize", "/finalize"),
        ("pay", "/pay"),
    ):
        (request,) = requests_of(server, customer_id, path_end)
        assert request["idempotency_key"] == f"{key}:{step}"
    (pay,) = requests_of(server, customer_id, "/pay")
    assert pay["params"]["off_session"] == "true"
    assert requests_of(server, customer_id, "/v1/payment_intents") == []  # no bare one

    order_id = attempt.order_id
    order = wait_for(
        lambda: (o := orders.get(customer_id, order_id)).receipt_url and o, "the receipt"
    )
    assert (order.invoice_id, order.invoice_number) == (invoice["id"], invoice["number"])
    assert (order.subtotal_cents, order.tax_cents, order.total_cents) == (14_700, 0, 14_700)
    text = pdf_text(str(order.invoice_pdf))
    for expected in ("Growth token pack", "Tokens: 19,500", "$147.00", "Ada Lovelace"):
        assert expected in text, expected
    assert purchase_credits(ledger, customer_id, attempt.order_id) == [3 * GROWTH_MT]
    assert not server.fake_stripe.violations


def test_declined_invoices_are_voided_and_three_pause_with_no_fourth(
    server: DevServer, customer_id: str, top_ups: TopUpStore, ledger: Ledger
) -> None:
    save_card(server, customer_id, card="pm_card_chargeDeclined")
    enable(server, customer_id, threshold="1500", max_charges_per_day=10)
    for round_number in range(4):
        debit(customer_id, f"down-{round_number}", 600)
        if round_number < 3:
            attempts = ended(top_ups, customer_id, count=round_number + 1)
            assert attempts[0].status == "declined"
            assert attempts[0].decline_code == "generic_decline"
        fund(ledger, customer_id, 600_000, key=f"up-{round_number}")
    wait_for(lambda: len(top_ups.recent_attempts(customer_id)) == 4, "the 4th crossing")
    time.sleep(1.0)
    state = top_ups.get_state(customer_id)
    assert (state.paused_reason, state.consecutive_failures) == ("declined_repeatedly", 3)
    assert len(requests_of(server, customer_id, "/pay")) == 3
    assert [invoice["status"] for invoice in invoices_of(server, customer_id)] == ["void"] * 3
    assert_consistent(ledger, customer_id)


def test_authentication_required_voids_the_invoice_and_the_recovery_checkout_invoices_the_order(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore, ledger: Ledger
) -> None:
    save_card(server, customer_id, card="pm_card_authenticationRequired")
    enable(server, customer_id, threshold="1500")
    debit(customer_id, "cross", 600)
    (attempt,) = ended(top_ups, customer_id)
    assert attempt.status == "authentication_required"
    assert attempt.order_id
    (voided,) = invoices_of(server, customer_id)
    assert voided["status"] == "void"
    _, body = api(server, "GET", customer_id, ROUTE)
    assert body["state"] == "needs_authentication"
    assert bus_event(server, customer_id, "AutoTopUpPaused")["reason"] == "authentication_required"
    session_id = body["recovery_url"].rsplit("/", 1)[1]
    assert server.fake_stripe.session_params[session_id]["invoice_creation"]["enabled"] == "true"

    reply = server.serve_local("POST", f"/_local/checkout/{session_id}/pay", [], b"")
    assert reply is not None
    assert reply.status == 303
    credited(orders, customer_id, attempt.order_id)
    order = orders.get(customer_id, attempt.order_id)
    assert order.invoice_number is not None  # the recovery Checkout's own invoice
    assert order.invoice_id != voided["id"]
    assert top_ups.get_state(customer_id).paused_reason is None
    assert purchase_credits(ledger, customer_id, attempt.order_id) == [attempt.packs * STARTER_MT]


def test_a_timeout_then_a_500_then_success_is_one_invoice_and_one_charge(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore, ledger: Ledger
) -> None:
    save_card(server, customer_id)
    enable(server, customer_id, threshold="1500")
    server.fake_stripe.timeout_sleep_s = 2.0  # the client gives up after 1 s
    server.fake_stripe.faults_for = customer_id
    server.fake_stripe.faults[:] = ["timeout", "500"]  # the invoice's payment meets them
    debit(customer_id, "cross", 600)
    (attempt,) = ended(top_ups, customer_id)
    assert attempt.status == "succeeded", attempt
    assert attempt.stripe_requests == 1 + 3  # opened once, paid on the third request
    pays = requests_of(server, customer_id, "/pay")
    assert {request["idempotency_key"] for request in pays} == {f"local:{attempt.attempt_id}:pay"}
    assert len(pays) == 3
    assert len(invoices_of(server, customer_id)) == 1
    assert attempt.order_id
    credited(orders, customer_id, attempt.order_id)
    time.sleep(0.5)
    assert purchase_credits(ledger, customer_id, attempt.order_id) == [attempt.packs * STARTER_MT]
    assert top_ups.get_state(customer_id).consecutive_failures == 0
    assert not server.fake_stripe.violations


def test_a_provider_outage_paying_the_invoice_is_never_a_decline(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore
) -> None:
    save_card(server, customer_id)
    enable(server, customer_id, threshold="1500")
    server.fake_stripe.faults_for = customer_id
    server.fake_stripe.faults[:] = ["429", "500", "429", "500"]
    debit(customer_id, "cross", 600)
    (attempt,) = ended(top_ups, customer_id)
    assert attempt.status == "provider_unavailable"
    state = top_ups.get_state(customer_id)
    assert (state.consecutive_failures, state.paused_reason) == (0, None)
    assert attempt.order_id
    assert orders.get(customer_id, attempt.order_id).status == "pending"
    (invoice,) = invoices_of(server, customer_id)
    assert invoice["status"] == "open"  # unpaid and not voided: Stripe's answer was unknown


def test_a_refund_of_an_invoice_paid_top_up_is_found_by_its_invoice_payment(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore, ledger: Ledger
) -> None:
    save_card(server, customer_id)
    enable(server, customer_id, threshold="1500")
    debit(customer_id, "cross", 600)  # 1,400
    (attempt,) = ended(top_ups, customer_id)
    assert attempt.order_id
    credited(orders, customer_id, attempt.order_id)
    (invoice,) = invoices_of(server, customer_id)
    (charged,) = [
        c
        for c in server.fake_stripe.invoicing.charges.values()
        if c["customer"] == invoice["customer"] and not c["metadata"]
    ]
    # The invoice's charge carries no metadata: invoice_payment.paid linked its payment
    # intent to the order, so the refund finds it.
    refund = {**charged, "amount_refunded": charged["amount"], "refunded": True}
    server.deliver_stripe_event("charge.refunded", refund)
    server.deliver_stripe_event("charge.refunded", refund)  # a redelivery
    assert orders.get(customer_id, attempt.order_id).status == "refunded"
    assert assert_consistent(ledger, customer_id).balance_mt == 1_400_000
    report = reconcile(ledger._client, "LedgerTable")
    assert [f for f in report.findings if f.customer_id == customer_id] == []


def deliver(event_type: str, obj: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    import json

    import webhook_handler

    request = stripe_events.webhook_request(stripe_events.event_body(event_type, dict(obj)))
    response = webhook_handler.lambda_handler(request, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_a_charge_of_our_customer_before_its_invoice_payment_is_redelivered_then_recorded(
    server: DevServer, customer_id: str, top_ups: TopUpStore, ledger: Ledger
) -> None:
    save_card(server, customer_id)
    stripe_customer = top_ups.get_state(customer_id).stripe_customer_id
    charge_id = "ch_early_" + customer_id
    charged = {
        "id": charge_id,
        "object": "charge",
        "amount": STARTER_CENTS,
        "currency": "usd",
        "customer": stripe_customer,
        "payment_intent": "pi_not_linked_yet_" + customer_id,
        "metadata": {},
        "receipt_url": "https://pay.stripe.test/receipts/1",
        "created": int(time.time()),
    }
    status, reply = deliver("charge.succeeded", charged)
    assert status == 503  # Stripe redelivers it once invoice_payment.paid linked it
    assert reply["error"]["retryable"] is True
    stale = {**charged, "created": int(time.time()) - 2 * 24 * 3600}
    assert deliver("charge.succeeded", stale)[1]["action"] == "unmatched"
    item = UnmatchedPayments(ledger._client, "LedgerTable").get(charge_id, "charge")
    assert item is not None
    other = {**charged, "customer": "cus_of_another_integration"}
    assert deliver("charge.succeeded", other)[1]["action"] == "ignored"


def test_with_stripe_tax_the_top_up_invoice_adds_tax_and_credits_the_catalog_tokens(
    server: DevServer,
    customer_id: str,
    top_ups: TopUpStore,
    orders: OrderStore,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRIPE_TAX", "true")
    status, body = api(
        server,
        "POST",
        customer_id,
        "/api/v1/customers/{}/tokens/purchase",
        {"package_id": "starter", "save_card": True},
    )
    assert status == 200, body
    form = b"card=pm_card_visa&name=Lise+Meitner&country=DE&city=Berlin&postal_code=10115"
    reply = server.serve_local("POST", f"/_local/checkout/{body['session_id']}/pay", [], form)
    assert reply is not None
    assert reply.status == 303
    wait_for(lambda: top_ups.get_state(customer_id).card, "the saved card")
    enable(server, customer_id, threshold="1500")
    debit(customer_id, "cross", 600)
    (attempt,) = ended(top_ups, customer_id)
    assert attempt.status == "succeeded"
    assert attempt.order_id
    credited(orders, customer_id, attempt.order_id)
    order = orders.get(customer_id, attempt.order_id)
    # Two Starter packs (a gap of 2,100 tokens) and the offline Stripe's 19% German VAT.
    assert attempt.packs == 2
    assert (order.subtotal_cents, order.tax_cents, order.total_cents) == (3_800, 722, 4_522)
    assert purchase_credits(ledger, customer_id, attempt.order_id) == [attempt.packs * STARTER_MT]
    (invoice,) = invoices_of(server, customer_id)
    assert invoice["automatic_tax"]["enabled"] is True
    assert invoice["customer_name"] == "Lise Meitner"


def test_an_invoice_that_does_not_bill_the_order_credits_nothing(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore, ledger: Ledger
) -> None:
    save_card(server, customer_id)
    enable(server, customer_id, threshold="1500")
    debit(customer_id, "cross", 600)
    (attempt,) = ended(top_ups, customer_id)
    assert attempt.order_id
    credited(orders, customer_id, attempt.order_id)
    (invoice,) = invoices_of(server, customer_id)
    before = assert_consistent(ledger, customer_id).balance_mt
    # A paid invoice of ours naming a pending order but billing a tampered amount
    tampered = {**invoice, "subtotal": 100, "total": 100, "amount_paid": 100}
    outcome = invoice_paid(tampered, orders=orders, ledger=ledger, top_ups=top_ups)
    assert outcome.action == "flagged"  # the order was already paid: flagged, not credited
    assert assert_consistent(ledger, customer_id).balance_mt == before


# ---- past Stripe's idempotency window: looked up by invoice -------------------------------


class ScriptedInvoices:
    """Stripe's invoice calls as the charger sees them past the window: only a lookup."""

    def __init__(self, found: OffSessionResult | None) -> None:
        self.found = found
        self.opened: list[str] = []
        self.voided: list[str] = []

    def open_invoice(
        self, invoice: dict[str, Any], items: list[dict[str, Any]], *, idempotency_key: str
    ) -> OffSessionResult:
        self.opened.append(idempotency_key)
        raise AssertionError("past the window an attempt is looked up, never opened again")

    def pay_invoice(
        self, invoice_id: str, params: dict[str, Any], *, idempotency_key: str
    ) -> OffSessionResult:
        raise AssertionError("never paid blind")

    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> None:
        self.voided.append(invoice_id)

    def find_invoice(self, metadata_key: str, value: str) -> OffSessionResult | None:
        assert metadata_key == "attempt_id"
        return self.found

    def confirm_off_session(
        self, params: dict[str, Any], *, idempotency_key: str
    ) -> OffSessionResult:
        raise AssertionError("an invoiced attempt makes no bare PaymentIntent")

    def create_checkout(self, params: dict[str, Any], *, idempotency_key: str) -> Any:
        raise AssertionError("no recovery past the window")

    def expire_checkout(self, session_id: str) -> None: ...

    def find_payment_intent(self, metadata_key: str, value: str) -> OffSessionResult | None:
        raise AssertionError("an invoiced attempt is looked up by its invoice")


def run_stale(
    attempt: Attempt,
    top_ups: TopUpStore,
    orders: OrderStore,
    stripe: ScriptedInvoices,
    ledger: Ledger,
) -> str:
    def credit(paid: Mapping[str, Any]) -> object:
        return invoice_paid(paid, orders=orders, ledger=ledger, top_ups=top_ups)

    return charge.charge_attempt(
        attempt.customer_id,
        attempt.version,
        store=top_ups,
        orders=orders,
        gateway=stripe,
        publish=lambda *_: None,
        recovery_urls=None,
        sleep=lambda _: None,
        credit_found=credit,
        clock=lambda: time.time() + 24 * 3600,
        billing=BillingSettings(),
    )


@pytest.mark.parametrize("found", ["nothing", "open"])
def test_a_stale_attempt_whose_invoice_was_never_paid_is_closed_unsent(
    top_ups: TopUpStore, orders: OrderStore, ledger: Ledger, found: str
) -> None:
    customer_id = f"cust_stale_inv_{time.time_ns()}"
    attempt = admitted(customer_id, ledger, top_ups)
    assert attempt.order_id
    opened = OffSessionResult("processing", invoice_id="in_open_" + customer_id)
    stripe = ScriptedInvoices(opened if found == "open" else None)
    assert run_stale(attempt, top_ups, orders, stripe, ledger) == "expired"
    assert stripe.opened == []
    assert stripe.voided == (["in_open_" + customer_id] if found == "open" else [])
    assert orders.get(customer_id, attempt.order_id).status == "expired"


def test_a_stale_attempt_whose_invoice_was_paid_is_credited_once_from_the_lookup(
    top_ups: TopUpStore, orders: OrderStore, ledger: Ledger
) -> None:
    customer_id = f"cust_stale_inv_{time.time_ns()}"
    attempt = admitted(customer_id, ledger, top_ups)
    assert attempt.order_id
    order = orders.get(customer_id, attempt.order_id)
    invoice, _ = invoice_params(order, top_ups.get_state(customer_id), attempt, BillingSettings())
    paid = {
        **invoice,
        "id": "in_paid_a_day_ago",
        "object": "invoice",
        "status": "paid",
        "subtotal": order.price_cents,
        "total": order.price_cents,
        "amount_paid": order.price_cents,
        "total_taxes": [],
    }
    stripe = ScriptedInvoices(OffSessionResult("succeeded", invoice_id=paid["id"], raw=paid))
    before = assert_consistent(ledger, customer_id).balance_mt
    assert run_stale(attempt, top_ups, orders, stripe, ledger) == "succeeded"
    assert orders.get(customer_id, attempt.order_id).status == "paid"
    after = assert_consistent(ledger, customer_id).balance_mt
    assert after - before == order.total_mt
    # Its webhook arriving later credits nothing more.
    invoice_paid(paid, orders=orders, ledger=ledger, top_ups=top_ups)
    assert assert_consistent(ledger, customer_id).balance_mt == after
