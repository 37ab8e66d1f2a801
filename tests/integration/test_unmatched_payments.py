"""No paid session is ever silent (issue 16): the order is found by the session id Stripe
generated; a session that disagrees is flagged with the reason; a paid session naming an
order of ours that we cannot find becomes a support item, a metric and an alarm; sessions
of other integrations on the same Stripe account stay ignored."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest

from local.devserver import DevServer
from tests import stripe_events
from tests.conftest import FakeLambdaContext
from tests.integration.helpers import assert_consistent, http_json, use_local_stripe
from token_billing.store.ledger import Ledger
from token_billing.store.order_records import Order
from token_billing.store.orders import OrderStore
from token_billing.store.unmatched_payments import UnmatchedPayments

PURCHASE = "/api/v1/customers/{}/tokens/purchase"


@pytest.fixture(scope="module")
def server(dev_server: DevServer) -> DevServer:
    return dev_server


@pytest.fixture(autouse=True)
def stripe_env(server: DevServer, local_aws: None) -> None:
    use_local_stripe(server)


@pytest.fixture
def store(ledger: Ledger) -> OrderStore:
    return OrderStore(ledger._client, "LedgerTable")


def deliver(
    event_type: str, obj: dict[str, Any], capsys: pytest.CaptureFixture[str], event_id: str
) -> tuple[int, dict[str, Any], str]:
    import webhook_handler

    body = stripe_events.event_body(event_type, obj, event_id=event_id)
    response = webhook_handler.lambda_handler(
        stripe_events.webhook_request(body), FakeLambdaContext()
    )
    return response["statusCode"], json.loads(response["body"]), capsys.readouterr().out


def bought(server: DevServer, store: OrderStore, customer_id: str) -> Order:
    from local import identity

    token = identity.mint(customer_id=customer_id)
    status, body = http_json(
        server.url, "POST", PURCHASE.format(customer_id), {"package_id": "growth"}, token=token
    )
    assert status == 200, body
    return store.get(customer_id, body["order_id"])


def our_order_id() -> str:
    return f"ord_{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


def test_a_paid_session_naming_an_order_we_lack_is_recorded_counted_and_alarmed(
    ledger: Ledger, customer_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = our_order_id()
    session_id = "cs_test_" + secrets.token_hex(8)
    session = stripe_events.checkout_session(
        session_id=session_id,
        customer_id=customer_id,
        order_id=missing,
        package_id="growth",
        amount_total=4_900,
    )
    status, reply, out = deliver("checkout.session.completed", session, capsys, "evt_u1")
    assert status == 200
    assert reply["action"] == "unmatched"
    assert missing in reply["detail"]
    assert '"UnmatchedPayments":[1.0]' in out
    item = UnmatchedPayments(ledger._client, "LedgerTable").get(session_id)
    assert item is not None
    assert item["claimed_order_id"] == {"S": missing}
    assert item["claimed_customer_id"] == {"S": customer_id}
    assert item["amount_total_cents"] == {"N": "4900"}
    assert item["currency"] == {"S": "usd"}
    assert ledger.get_account(customer_id) is None  # nothing credited

    # Stripe redelivers: still not silent in the reply, but one support item, one count.
    status, reply, out = deliver("checkout.session.completed", session, capsys, "evt_u1")
    assert (status, reply["action"]) == (200, "unmatched")
    assert "UnmatchedPayments" not in out


@pytest.mark.parametrize(
    "metadata",
    [{}, {"order_id": "12345", "customer_id": "shop-7"}, {"cart": "abc"}],
    ids=["no metadata", "another shop's order id", "other keys"],
)
def test_sessions_of_other_integrations_stay_ignored(
    metadata: dict[str, str], ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    session_id = "cs_test_" + secrets.token_hex(8)
    session = stripe_events.checkout_session(
        session_id=session_id,
        customer_id="x",
        order_id="x",
        package_id="x",
        amount_total=100,
    )
    session["metadata"] = metadata
    session["client_reference_id"] = None
    status, reply, out = deliver("checkout.session.completed", session, capsys, "evt_o1")
    assert (status, reply["action"]) == (200, "ignored")
    assert "UnmatchedPayments" not in out
    assert UnmatchedPayments(ledger._client, "LedgerTable").get(session_id) is None


def test_the_order_is_found_by_the_session_id_stripe_generated(
    server: DevServer,
    store: OrderStore,
    ledger: Ledger,
    customer_id: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Metadata can be lost or edited on Stripe's side; the session id cannot."""
    order = bought(server, store, customer_id)
    assert order.session_id is not None
    session = stripe_events.checkout_session(
        session_id=order.session_id,
        customer_id=customer_id,
        order_id=order.order_id,
        package_id="growth",
        amount_total=4_900,
    )
    session["metadata"] = {}
    status, reply, _ = deliver("checkout.session.completed", session, capsys, "evt_s1")
    assert (status, reply["action"], reply["order_id"]) == (200, "flagged", order.order_id)
    assert "customer does not match" in reply["detail"]  # the metadata says nothing


def test_a_session_whose_metadata_names_another_order_is_flagged_with_the_reason(
    server: DevServer,
    store: OrderStore,
    ledger: Ledger,
    customer_id: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = bought(server, store, customer_id)
    second = bought(server, store, customer_id)
    assert first.session_id is not None
    session = stripe_events.checkout_session(
        session_id=first.session_id,
        customer_id=customer_id,
        order_id=second.order_id,
        package_id="growth",
        amount_total=4_900,
    )
    status, reply, out = deliver("checkout.session.completed", session, capsys, "evt_s2")
    assert (status, reply["action"], reply["order_id"]) == (200, "flagged", first.order_id)
    assert f"metadata names order {second.order_id}" in reply["detail"]
    assert store.get(customer_id, first.order_id).status == "flagged"
    assert store.get(customer_id, second.order_id).status == "pending"
    assert '"AmountMismatches":[1.0]' in out
    assert ledger.get_account(customer_id) is None


def test_a_matching_session_still_credits_once(
    server: DevServer,
    store: OrderStore,
    ledger: Ledger,
    customer_id: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    order = bought(server, store, customer_id)
    assert order.session_id is not None
    session = stripe_events.checkout_session(
        session_id=order.session_id,
        customer_id=customer_id,
        order_id=order.order_id,
        package_id="growth",
        amount_total=4_900,
    )
    assert deliver("checkout.session.completed", session, capsys, "evt_c1")[1]["action"] == (
        "credited"
    )
    assert deliver("checkout.session.completed", session, capsys, "evt_c1")[1]["action"] == (
        "already_credited"
    )
    assert assert_consistent(ledger, customer_id).balance_mt == 6_500_000
