"""An invoice and a receipt for every purchase (issue 26), on DynamoDB Local with the dev
server's offline Stripe: the whole loop (buy, see the invoice, download its PDF), the
documents' events in any order and any number of times (one invoice, one credit), tax on
top of the catalog price, and documents we cannot match recorded for support."""

from __future__ import annotations

import io
import json
import os
import random
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pypdf import PdfReader

from local import identity
from local.devserver import DevServer
from tests import stripe_events
from tests.conftest import FakeLambdaContext
from tests.integration.helpers import assert_consistent, http_json, use_local_stripe
from token_billing.store.ledger import Ledger
from token_billing.store.order_records import Order
from token_billing.store.orders import OrderStore
from token_billing.store.unmatched_payments import UnmatchedPayments

pytestmark = pytest.mark.integration
PURCHASE = "/api/v1/customers/{}/tokens/purchase"
ORDERS = "/api/v1/customers/{}/tokens/orders"
BUYER = {
    "name": "Grace Hopper",
    "email": "grace@example.com",
    "line1": "1 Compiler Way",
    "city": "Arlington",
    "postal_code": "22201",
    "country": "US",
}


@pytest.fixture(scope="module")
def server(dev_server: DevServer) -> DevServer:
    return dev_server


@pytest.fixture(autouse=True)
def stripe_env(server: DevServer, local_aws: None) -> None:
    use_local_stripe(server)
    server.fake_stripe.take_events()  # nothing of an earlier test's left to deliver


@pytest.fixture
def store(ledger: Ledger) -> OrderStore:
    return OrderStore(ledger._client, "LedgerTable")


def bought(server: DevServer, store: OrderStore, customer_id: str, package_id: str) -> Order:
    token = identity.mint(customer_id=customer_id)
    path = PURCHASE.format(customer_id)
    status, body = http_json(server.url, "POST", path, {"package_id": package_id}, token=token)
    assert status == 200, body
    return store.get(customer_id, body["order_id"])


def pay_on_the_page(server: DevServer, order: Order, billing: dict[str, str]) -> None:
    """Press Pay on the offline checkout page with these billing details: the webhook gets
    the session, then the charge's and the invoice's events."""
    form = urllib.parse.urlencode(billing)
    request = urllib.request.Request(  # noqa: S310 - the loopback dev server
        f"{server.url}/_local/checkout/{order.session_id}/pay", data=form.encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as redirect:
        urllib.request.build_opener(NoRedirect).open(request, timeout=10)
    assert redirect.value.code == 303  # to the success URL


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return response.headers["Content-Type"], response.read()


def pdf_text(document: bytes) -> str:
    reader = PdfReader(io.BytesIO(document))
    return "\n".join(page.extract_text() for page in reader.pages)


def listed_order(server: DevServer, customer_id: str, order_id: str) -> dict[str, Any]:
    token = identity.mint(customer_id=customer_id)
    status, body = http_json(server.url, "GET", ORDERS.format(customer_id), token=token)
    assert status == 200, body
    return next(order for order in body["data"] if order["id"] == order_id)


def deliver(event_type: str, obj: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    import webhook_handler

    request = stripe_events.webhook_request(stripe_events.event_body(event_type, obj))
    response = webhook_handler.lambda_handler(request, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


# ---- the loop on one machine ------------------------------------------------------------


def test_a_growth_purchase_lists_its_invoice_whose_page_and_pdf_name_what_was_bought(
    server: DevServer, ledger: Ledger, store: OrderStore, customer_id: str
) -> None:
    order = bought(server, store, customer_id, "growth")
    pay_on_the_page(server, order, BUYER)

    listed = listed_order(server, customer_id, order.order_id)
    assert listed["status"] == "paid"
    assert (listed["subtotal_cents"], listed["tax_cents"], listed["total_cents"]) == (
        4_900,
        0,
        4_900,
    )
    number = listed["invoice_number"]
    assert number
    assert number.endswith("-0001")
    assert listed["invoice_url"].startswith(f"{server.url}/_local/invoices/in_local_")
    assert listed["invoice_pdf"] == listed["invoice_url"] + "/pdf"
    assert listed["receipt_url"].startswith(f"{server.url}/_local/receipts/ch_local_")

    kind, page = fetch(listed["invoice_url"])
    assert kind.startswith("text/html")
    assert number in page.decode()
    assert "Grace Hopper" in page.decode()
    kind, document = fetch(listed["invoice_pdf"])
    assert kind == "application/pdf"
    assert document.startswith(b"%PDF-")
    text = pdf_text(document)
    for expected in (
        number,
        "Growth token pack",
        "Tokens: 6,500",
        "$49.00",
        "Grace Hopper",
        "grace@example.com",
        "1 Compiler Way",
        "22201 Arlington",
        "Token Billing (offline Stripe)",
    ):
        assert expected in text, expected
    _, receipt = fetch(listed["receipt_url"])
    assert "$49.00" in receipt.decode()
    assert assert_consistent(ledger, customer_id).balance_mt == 6_500_000


def test_without_invoices_checkout_gets_a_receipt_only(
    server: DevServer, store: OrderStore, customer_id: str
) -> None:
    os.environ["STRIPE_INVOICES"] = "false"
    order = bought(server, store, customer_id, "starter")
    sent = server.fake_stripe.session_params[str(order.session_id)]
    assert "invoice_creation" not in sent
    assert "billing_address_collection" not in sent
    pay_on_the_page(server, order, {})
    listed = listed_order(server, customer_id, order.order_id)
    assert listed["status"] == "paid"
    assert listed["invoice_number"] is None
    assert listed["invoice_url"] is None
    assert listed["receipt_url"] is not None


# ---- any order, any number of times -----------------------------------------------------


def paid_offline(server: DevServer, order: Order, billing: dict[str, str]) -> list[Any]:
    """Pay the order's session on the fake Stripe and take its events undelivered: the
    session's and every document's, as (type, object)."""
    session = server.fake_stripe.pay(str(order.session_id), billing=billing)
    return [("checkout.session.completed", session), *server.fake_stripe.take_events()]


def test_documents_twice_out_of_order_and_before_the_credit_make_one_invoice_and_one_credit(
    server: DevServer, ledger: Ledger, store: OrderStore, customer_id: str
) -> None:
    order = bought(server, store, customer_id, "growth")
    events = dict(paid_offline(server, order, BUYER))
    assert set(events) == {
        "checkout.session.completed",
        "charge.succeeded",
        "invoice.finalized",
        "invoice.paid",
    }
    invoice = events["invoice.paid"]

    # Before the credit: the invoice and the receipt, each twice, in the wrong order.
    for event_type in ("invoice.paid", "charge.succeeded", "invoice.finalized") * 2:
        status, reply = deliver(event_type, events[event_type])
        assert status == 200, reply
        assert reply["order_id"] == order.order_id
        assert reply["action"] in (
            "invoice_recorded",
            "invoice_unchanged",
            "charge_recorded",
            "charge_unchanged",
        )
    early = store.get(customer_id, order.order_id)
    assert early.status == "pending"
    assert ledger.get_account(customer_id) is None
    assert (early.invoice_id, early.invoice_number) == (invoice["id"], invoice["number"])

    assert (
        deliver("checkout.session.completed", events["checkout.session.completed"])[1]["action"]
        == "credited"
    )
    # After the credit, everything again, newest first.
    for event_type in reversed(list(events)):
        assert deliver(event_type, events[event_type])[1]["action"] in (
            "already_credited",
            "invoice_unchanged",
            "charge_unchanged",
        )
    paid = store.get(customer_id, order.order_id)
    assert paid.status == "paid"
    assert (paid.invoice_id, paid.invoice_number, paid.invoice_url, paid.invoice_pdf) == (
        invoice["id"],
        invoice["number"],
        invoice["hosted_invoice_url"],
        invoice["invoice_pdf"],
    )
    assert (paid.charge_id, paid.receipt_url) == (
        events["charge.succeeded"]["id"],
        events["charge.succeeded"]["receipt_url"],
    )
    assert assert_consistent(ledger, customer_id).balance_mt == 6_500_000


def test_every_event_of_a_purchase_racing_itself_credits_once_and_keeps_one_invoice(
    server: DevServer, ledger: Ledger, store: OrderStore, customer_id: str
) -> None:
    order = bought(server, store, customer_id, "pro")
    events = paid_offline(server, order, BUYER)
    deliveries = events * 3
    random.Random(26).shuffle(deliveries)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda event: deliver(*event), deliveries))
    assert all(status == 200 for status, _ in replies)
    actions = [reply["action"] for _, reply in replies]
    assert actions.count("credited") == 1
    assert actions.count("invoice_recorded") >= 1
    assert "unmatched" not in actions
    paid = store.get(customer_id, order.order_id)
    invoice = dict(events)["invoice.paid"]
    assert (paid.status, paid.invoice_id, paid.invoice_number) == (
        "paid",
        invoice["id"],
        invoice["number"],
    )
    assert assert_consistent(ledger, customer_id).balance_mt == 16_500_000


def test_a_second_invoice_for_the_same_order_changes_nothing_and_is_recorded_for_support(
    server: DevServer, ledger: Ledger, store: OrderStore, customer_id: str
) -> None:
    order = bought(server, store, customer_id, "starter")
    events = dict(paid_offline(server, order, BUYER))
    first = events["invoice.paid"]
    assert deliver("invoice.paid", first)[1]["action"] == "invoice_recorded"
    other = {**first, "id": "in_other_" + customer_id, "number": "OTHER-0001"}
    status, reply = deliver("invoice.paid", other)
    assert (status, reply["action"]) == (200, "unmatched")
    assert first["id"] in reply["detail"]
    assert store.get(customer_id, order.order_id).invoice_number == first["number"]
    item = UnmatchedPayments(ledger._client, "LedgerTable").get(other["id"], "invoice")
    assert item is not None
    assert item["claimed_order_id"] == {"S": order.order_id}
    # ... and a session naming that other invoice credits all the same (no tokens hang on it)
    session = {**events["checkout.session.completed"], "invoice": other["id"]}
    assert deliver("checkout.session.completed", session)[1]["action"] == "credited"
    assert store.get(customer_id, order.order_id).invoice_id == first["id"]


def test_documents_naming_an_order_we_lack_are_recorded_and_others_ignored(
    server: DevServer, ledger: Ledger, store: OrderStore, customer_id: str
) -> None:
    order = bought(server, store, customer_id, "starter")
    events = dict(paid_offline(server, order, BUYER))
    missing = "ord_" + "0" * 12 + customer_id[-12:].rjust(12, "0")
    for event_type, kind in (("invoice.paid", "invoice"), ("charge.succeeded", "charge")):
        orphan = {**events[event_type], "id": f"{event_type[:2]}_orphan_{customer_id}"}
        orphan["metadata"] = {**orphan["metadata"], "order_id": missing}
        orphan["payment_intent"] = "pi_orphan_" + customer_id
        for _ in range(2):  # redelivered: one support item
            assert deliver(event_type, orphan)[1]["action"] == "unmatched"
        item = UnmatchedPayments(ledger._client, "LedgerTable").get(orphan["id"], kind)
        assert item is not None
        assert item["claimed_order_id"] == {"S": missing}
        foreign = {**orphan, "metadata": {"cart": "abc"}}
        assert deliver(event_type, foreign)[1]["action"] == "ignored"
    assert store.get(customer_id, order.order_id).invoice_id is None


def test_a_charge_that_disagrees_with_its_order_records_no_receipt(
    server: DevServer, ledger: Ledger, store: OrderStore, customer_id: str
) -> None:
    order = bought(server, store, customer_id, "starter")
    events = dict(paid_offline(server, order, BUYER))
    deliver("checkout.session.completed", events["checkout.session.completed"])
    wrong = {**events["charge.succeeded"], "amount": 1}
    status, reply = deliver("charge.succeeded", wrong)
    assert (status, reply["action"]) == (200, "unmatched")
    assert "amount 1 != the order's total 1900" in reply["detail"]
    assert store.get(customer_id, order.order_id).receipt_url is None


# ---- tax --------------------------------------------------------------------------------


def test_with_stripe_tax_the_total_carries_the_tax_and_the_tokens_are_the_catalogs(
    server: DevServer, ledger: Ledger, store: OrderStore, customer_id: str
) -> None:
    os.environ.update(STRIPE_TAX="true", COLLECT_TAX_IDS="true")
    order = bought(server, store, customer_id, "growth")
    sent = server.fake_stripe.session_params[str(order.session_id)]
    assert sent["automatic_tax"] == {"enabled": "true"}
    assert sent["tax_id_collection"] == {"enabled": "true"}
    assert sent["line_items"][0]["price_data"]["tax_behavior"] == "exclusive"
    taxed = {**BUYER, "country": "DE", "city": "Berlin", "postal_code": "10115"}
    pay_on_the_page(server, order, {**taxed, "tax_id": "DE123456789"})

    listed = listed_order(server, customer_id, order.order_id)
    assert (listed["subtotal_cents"], listed["tax_cents"], listed["total_cents"]) == (
        4_900,
        931,  # the offline Stripe's 19% for a German address
        5_831,
    )
    assert listed["price_cents"] == 4_900
    account = assert_consistent(ledger, customer_id)
    assert (account.purchased_mt, account.bonus_mt) == (6_000_000, 500_000)
    text = pdf_text(fetch(listed["invoice_pdf"])[1])
    for expected in ("VAT (19%)", "$9.31", "$58.31", "Tax ID (eu_vat): DE123456789"):
        assert expected in text, expected


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"amount_subtotal": 100, "amount_total": 119}, "amount 100 != 4900"),
        ({"amount_total": 4_000}, "is not the subtotal plus tax"),
        (
            {"total_details": {"amount_discount": 900, "amount_shipping": 0, "amount_tax": 0}},
            "is not the subtotal plus tax",
        ),
    ],
    ids=["subtotal", "total", "discount"],
)
def test_a_tampered_taxed_session_credits_nothing_and_flags_the_order(
    server: DevServer,
    ledger: Ledger,
    store: OrderStore,
    customer_id: str,
    tamper: dict[str, Any],
    reason: str,
) -> None:
    os.environ["STRIPE_TAX"] = "true"
    order = bought(server, store, customer_id, "growth")
    session = stripe_events.checkout_session(
        session_id=str(order.session_id),
        customer_id=customer_id,
        order_id=order.order_id,
        package_id="growth",
        amount_total=4_900,
        tax=931,
    )
    session.update(tamper)
    status, reply = deliver("checkout.session.completed", session)
    assert (status, reply["action"]) == (200, "flagged")
    assert reason in reply["detail"]
    assert store.get(customer_id, order.order_id).status == "flagged"
    assert ledger.get_account(customer_id) is None
