"""Auto top-up end to end on one machine: DynamoDB Local's real stream delivered by the dev
server's pollers to the ledger-stream function (admission) and the charger (the payment),
the dev server's fake Stripe (Customers, saved cards, off-session PaymentIntents with
Stripe's test cards, injected faults, signed webhooks back to the real webhook handler)
and its fake EventBridge.

Here with StripeInvoices=false: each attempt is a bare PaymentIntent.
`test_auto_top_up_invoices.py` proves the same guard rails for the default, an invoice
paid off-session.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from debit_handler import lambda_handler as debit_handler

from local import dynamodb_local, identity
from local.devserver import DevServer
from tests.conftest import fake_context
from tests.integration.helpers import assert_consistent, fund, http_json, use_local_stripe
from token_billing import runtime
from token_billing.domain.auto_top_up import charge
from token_billing.domain.auto_top_up.admission import TopUpTrigger
from token_billing.domain.auto_top_up.settings import CONSENT_VERSION
from token_billing.domain.reconcile import reconcile
from token_billing.integrations import eventbridge as eventbridge_module
from token_billing.store.ledger import Ledger
from token_billing.store.orders import OrderStore
from token_billing.store.stream_images import AccountChange
from token_billing.store.top_up_records import Attempt
from token_billing.store.top_up_store import TopUpStore

pytestmark = pytest.mark.integration

TABLE = "LedgerTable"
BUS = "TokenBillingEventBus"
ROUTE = "/api/v1/customers/{}/tokens/auto-top-up"
PURCHASE = "/api/v1/customers/{}/tokens/purchase"
STARTER_MT = 2_000_000
STARTER_CENTS = 1_900
WAIT_S = 20.0


@pytest.fixture(scope="module")
def server(dev_server: DevServer, ddb_local: dynamodb_local.DynamoDBLocal) -> Iterator[DevServer]:
    dev_server.fake_events.log_path = None
    dev_server.fake_events.echo = False
    dev_server.start_stream_pollers(ddb_local.endpoint)
    yield dev_server
    dev_server.stop_stream_pollers()


@pytest.fixture(autouse=True)
def environment(server: DevServer, local_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    use_local_stripe(server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", server.url)
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.setenv("STRIPE_TIMEOUT_S", "1")
    monkeypatch.setenv("STRIPE_INVOICES", "false")
    monkeypatch.setattr(charge, "STRIPE_BACKOFF_BASE_S", 0.05)
    eventbridge_module.events_client.cache_clear()
    runtime.reset()
    server.fake_stripe.faults.clear()
    server.fake_stripe.faults_for = None


@pytest.fixture
def top_ups(ddb_local: dynamodb_local.DynamoDBLocal) -> TopUpStore:
    return TopUpStore(ddb_local.client(), TABLE)


@pytest.fixture
def orders(ddb_local: dynamodb_local.DynamoDBLocal) -> OrderStore:
    return OrderStore(ddb_local.client(), TABLE)


# ---- helpers -----------------------------------------------------------------------------


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def api(
    server: DevServer, method: str, customer_id: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    token = identity.mint(customer_id=customer_id)
    return http_json(server.url, method, path.format(customer_id), body, token=token)


def save_card(server: DevServer, customer_id: str, card: str = "pm_card_visa") -> dict[str, Any]:
    """Buy a Starter pack with save_card through the offline checkout, paying with `card`."""
    status, body = api(
        server, "POST", customer_id, PURCHASE, {"package_id": "starter", "save_card": True}
    )
    assert status == 200, body
    reply = server.serve_local(
        "POST", f"/_local/checkout/{body['session_id']}/pay", [], f"card={card}".encode()
    )
    assert reply is not None
    assert reply.status == 303
    return body


def enable(server: DevServer, customer_id: str, **settings: Any) -> dict[str, Any]:
    body = {
        "enabled": True,
        "package_id": "starter",
        "max_cents_per_month": 100_000,
        "consent_text_version": CONSENT_VERSION,
        **settings,
    }
    status, reply = api(server, "PUT", customer_id, ROUTE, body)
    assert status == 200, reply
    return reply


def debit(customer_id: str, key: str, tokens: int) -> dict[str, Any]:
    payload = {
        "customer_id": customer_id,
        "idempotency_key": key,
        "usage": [{"action": "vm_runtime", "quantity": tokens}],
    }
    reply: dict[str, Any] = debit_handler(payload, fake_context())
    assert reply["ok"] is True, reply
    return reply


def payment_intent_requests(server: DevServer, customer_id: str) -> list[dict[str, Any]]:
    return [
        request
        for request in list(server.fake_stripe.requests)
        if request["path"] == "/v1/payment_intents"
        and request["params"].get("metadata", {}).get("customer_id") == customer_id
    ]


def charges(server: DevServer, customer_id: str) -> list[dict[str, Any]]:
    """PaymentIntents the fake Stripe created (each key once) for this customer."""
    return [
        intent
        for intent in list(server.fake_stripe.payment_intents.values())
        if intent["metadata"].get("customer_id") == customer_id
    ]


def ended(top_ups: TopUpStore, customer_id: str, count: int = 1) -> list[Attempt]:
    """Wait until `count` attempts were charged and ended, and nothing is in flight."""

    def check() -> list[Attempt] | None:
        attempts = [
            a
            for a in top_ups.recent_attempts(customer_id, limit=100)
            if a.order_id and a.status != "admitted"
        ]
        if len(attempts) >= count and top_ups.get_state(customer_id).in_flight is None:
            return attempts
        return None

    found: list[Attempt] = wait_for(check, f"{count} ended attempt(s)")
    return found


def credited(orders: OrderStore, customer_id: str, order_id: str) -> None:
    wait_for(lambda: orders.get(customer_id, order_id).status == "paid", f"order {order_id} paid")


def purchase_credits(ledger: Ledger, customer_id: str, order_id: str) -> list[int]:
    return [
        int(entry["amount_mt"]["N"])
        for entry in ledger.iter_entries(customer_id)
        if entry.get("kind", {}).get("S") == "purchase"
        and entry.get("order_id", {}).get("S") == order_id
    ]


def bus_events(server: DevServer, customer_id: str, detail_type: str) -> list[dict[str, Any]]:
    found = []
    for entry in server.fake_events.snapshot():
        detail = json.loads(entry["Detail"])
        if detail.get("customer_id") == customer_id and entry["DetailType"] == detail_type:
            found.append(detail)
    return found


def bus_event(server: DevServer, customer_id: str, detail_type: str) -> dict[str, Any]:
    """The one event of this type, waited for: events go out after the outcome is recorded."""
    found: list[dict[str, Any]] = wait_for(
        lambda: bus_events(server, customer_id, detail_type), f"a {detail_type} event"
    )
    assert len(found) == 1, found
    return found[0]


def crossing(customer_id: str, version: int, threshold_mt: int) -> AccountChange:
    """A change that took available tokens from the threshold to just below it."""
    return AccountChange(
        customer_id=customer_id,
        version=version,
        updated_at=datetime.now(UTC).isoformat(),
        old_balance_mt=threshold_mt,
        balance_mt=threshold_mt - 1_000,
        available_mt=threshold_mt - 1_000,
        usage_delta_mt={},
        old_available_mt=threshold_mt,
    )


# ---- settings ----------------------------------------------------------------------------


def test_settings_defaults_consent_and_validation_change_nothing(
    server: DevServer, customer_id: str, top_ups: TopUpStore
) -> None:
    status, body = api(server, "GET", customer_id, ROUTE)
    assert status == 200, body
    assert body["state"] == "disabled"
    assert body["card"] is None
    assert body["attempts"] == []
    assert body["threshold"] == "500"
    assert body["max_charges_per_day"] == 2
    assert body["consent_text_version"] == CONSENT_VERSION

    no_card = {
        "enabled": True,
        "package_id": "growth",
        "max_cents_per_month": 10_000,
        "consent_text_version": CONSENT_VERSION,
    }
    status, body = api(server, "PUT", customer_id, ROUTE, no_card)
    assert status == 409, body
    assert body["error"]["code"] == "conflict"

    save_card(server, customer_id)
    bad_bodies = [
        {**no_card, "consent_text_version": None},  # no consent
        {**no_card, "max_cents_per_month": None},  # cap required when enabling
        {**no_card, "max_cents_per_month": 100},  # below one pack
        {**no_card, "package_id": "platinum"},
        {**no_card, "threshold": "1000", "target": "900"},
        {**no_card, "threshold": "-5"},
        {**no_card, "max_charges_per_day": 0},
        {**no_card, "price_cents": 1},  # unknown field
    ]
    for bad in bad_bodies:
        status, body = api(server, "PUT", customer_id, ROUTE, bad)
        assert status == 400, (bad, body)
        assert top_ups.get_state(customer_id).enabled is False
        assert top_ups.get_state(customer_id).settings_version == 0

    status, body = api(server, "PUT", customer_id, ROUTE, no_card)
    assert status == 200, body
    assert body["state"] == "active"
    assert body["threshold_mt"] == 500_000
    assert body["target_mt"] == 500_000 + 6_500_000
    assert body["card"] == {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}
    assert body["consent"]["text_version"] == CONSENT_VERSION
    assert customer_id in body["consent"]["accepted_by"]  # the JWT subject who enabled it
    other = identity.mint(customer_id=customer_id + "_x")
    status, _ = http_json(server.url, "GET", ROUTE.format(customer_id), token=other)
    assert status == 403


def test_the_stripe_customer_is_created_once_and_the_card_comes_from_the_webhook(
    server: DevServer, customer_id: str, top_ups: TopUpStore
) -> None:
    first = save_card(server, customer_id)
    second = save_card(server, customer_id, card="pm_card_chargeDeclined")
    sessions = [server.fake_stripe.sessions[b["session_id"]] for b in (first, second)]
    customers = {session["customer"] for session in sessions}
    assert len(customers) == 1
    assert all(session["setup_future_usage"] == "off_session" for session in sessions)
    state = top_ups.get_state(customer_id)
    assert state.stripe_customer_id in customers
    assert state.card is not None
    assert state.card.last4 == "0002"
    created = [r for r in server.fake_stripe.requests if r["path"] == "/v1/customers"]
    assert sum(1 for r in created if r["params"]["metadata"]["customer_id"] == customer_id) == 1

    # payment_method.detached disables auto top-up and says why.
    enable(server, customer_id)
    status, _ = http_json(
        server.url,
        "POST",
        f"/_stripe/v1/payment_methods/{state.card.payment_method_id}/detach",
        {},
        headers={"Authorization": "Bearer sk_test_x"},
    )
    assert status == 200
    wait_for(lambda: not top_ups.get_state(customer_id).enabled, "auto top-up disabled")
    status, body = api(server, "GET", customer_id, ROUTE)
    assert body["state"] == "disabled"
    assert body["disabled_reason"] == "card_detached"
    assert body["card"] is None


# ---- one charge per need -----------------------------------------------------------------


def test_twenty_concurrent_debits_crossing_together_make_one_charge(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore, ledger: Ledger
) -> None:
    save_card(server, customer_id)  # 2,000 tokens
    enable(server, customer_id, threshold="1500")  # target 3,500
    barrier = threading.Barrier(20)

    def spend(index: int) -> None:
        barrier.wait()
        debit(customer_id, f"d{index}", 50)  # together: 2,000 -> 1,000

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (attempt,) = ended(top_ups, customer_id)
    assert attempt.status == "succeeded", attempt
    assert attempt.order_id is not None
    credited(orders, customer_id, attempt.order_id)
    time.sleep(1.5)  # room for any second charge to show itself
    assert len(charges(server, customer_id)) == 1
    # Crossing at 1,450 or below with a 3,500 target: 2 Starter packs, one PaymentIntent.
    assert attempt.packs == -(-(3_500_000 - attempt.available_mt) // STARTER_MT)  # type: ignore[operator]
    assert purchase_credits(ledger, customer_id, attempt.order_id) == [attempt.packs * STARTER_MT]
    account = assert_consistent(ledger, customer_id)
    assert account.available_mt == 1_000_000 + attempt.packs * STARTER_MT
    event = bus_event(server, customer_id, "AutoTopUpSucceeded")
    assert event["attempt_id"] == attempt.attempt_id
    assert event["amount_cents"] == attempt.amount_cents
    assert not server.fake_stripe.violations


def test_the_same_crossing_delivered_twice_is_one_charge_and_a_later_one_charges_again(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore, ledger: Ledger
) -> None:
    save_card(server, customer_id)
    enable(server, customer_id, threshold="1500", target="3500")
    debit(customer_id, "cross-1", 600)  # 2,000 -> 1,400: crosses
    (first,) = ended(top_ups, customer_id)
    assert first.order_id
    credited(orders, customer_id, first.order_id)  # + 2 packs: 5,400
    version = first.version  # the account version of the crossing
    # The stream delivers the same crossing again (a retried batch): nothing more happens.
    state = top_ups.get_state(customer_id)
    again = TopUpTrigger(top_ups).on_account_change(crossing(customer_id, version, 1_500_000))
    assert again == "duplicate"
    assert top_ups.get_state(customer_id).charges_on(datetime.now(UTC).strftime("%Y-%m-%d")) == (
        state.charges_on(datetime.now(UTC).strftime("%Y-%m-%d"))
    )
    assert len(charges(server, customer_id)) == 1

    debit(customer_id, "cross-2", 4_000)  # 5,400 -> 1,400: a new crossing, after the credit
    attempts = ended(top_ups, customer_id, count=2)
    assert {a.status for a in attempts} == {"succeeded"}
    assert len(charges(server, customer_id)) == 2
    for attempt in attempts:
        assert attempt.order_id
        credited(orders, customer_id, attempt.order_id)
    assert_consistent(ledger, customer_id)


@pytest.mark.parametrize(
    ("caps", "refusal"),
    [
        ({"max_charges_per_day": 2}, "cap_reached"),
        ({"max_charges_per_day": 10, "max_cents_per_month": 2 * STARTER_CENTS + 100}, None),
    ],
)
def test_ten_crossings_racing_the_caps_make_two_charges(
    server: DevServer,
    customer_id: str,
    top_ups: TopUpStore,
    caps: dict[str, Any],
    refusal: str | None,
) -> None:
    """Ten crossings (distinct account versions) race through the admission's one
    conditional write. A crossing refused because another attempt is in flight comes back
    as the next crossing would, until it is admitted or refused for good."""
    refusal = refusal or "monthly_cap_reached"
    save_card(server, customer_id)
    enable(server, customer_id, threshold="1500", target="2400", **caps)
    versions = iter(range(1_000_000, 2_000_000))
    lock = threading.Lock()
    finals: list[str] = []
    barrier = threading.Barrier(10)

    def race() -> None:
        barrier.wait()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with lock:
                version = next(versions)
            outcome = TopUpTrigger(top_ups).on_account_change(
                crossing(customer_id, version, 1_500_000)
            )
            if outcome != "in_flight":
                with lock:
                    finals.append(str(outcome))
                return
            time.sleep(0.05)

    threads = [threading.Thread(target=race) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(finals) == sorted(["admitted"] * 2 + [refusal] * 8), finals
    attempts = ended(top_ups, customer_id, count=2)
    assert [a.status for a in attempts] == ["succeeded", "succeeded"]
    assert len(charges(server, customer_id)) == 2
    recorded = top_ups.recent_attempts(customer_id, limit=100)
    assert sum(1 for a in recorded if a.status == refusal) == 8


def test_a_gap_of_two_and_a_half_packs_is_one_payment_intent_for_three(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore, ledger: Ledger
) -> None:
    save_card(server, customer_id)  # 2,000
    enable(server, customer_id, threshold="1000", target="5900")
    debit(customer_id, "gap", 1_100)  # available 900: the gap is 5,000 = 2.5 Starter packs
    (attempt,) = ended(top_ups, customer_id)
    assert attempt.status == "succeeded"
    assert attempt.packs == 3
    (request,) = payment_intent_requests(server, customer_id)
    assert request["params"]["amount"] == str(3 * STARTER_CENTS)
    assert request["params"]["metadata"]["packs"] == "3"
    assert request["params"]["off_session"] == "true"
    assert request["params"]["confirm"] == "true"
    assert request["idempotency_key"] == f"local:{attempt.attempt_id}"  # scoped to the stack
    assert attempt.order_id
    credited(orders, customer_id, attempt.order_id)
    assert assert_consistent(ledger, customer_id).available_mt == 900_000 + 3 * STARTER_MT


# ---- failure is bounded and loud ---------------------------------------------------------


def test_declined_three_times_pauses_and_there_is_no_fourth_attempt(
    server: DevServer, customer_id: str, top_ups: TopUpStore, ledger: Ledger
) -> None:
    save_card(server, customer_id, card="pm_card_chargeDeclined")
    enable(server, customer_id, threshold="1500", max_charges_per_day=10)
    for round_number in range(4):
        debit(customer_id, f"down-{round_number}", 600)  # 2,000 -> 1,400: crosses
        if round_number < 3:
            attempts = ended(top_ups, customer_id, count=round_number + 1)
            assert attempts[0].status == "declined"
            assert attempts[0].decline_code == "generic_decline"
        fund(ledger, customer_id, 600_000, key=f"up-{round_number}")  # back to 2,000
    wait_for(lambda: len(top_ups.recent_attempts(customer_id)) == 4, "the 4th crossing")
    time.sleep(1.0)  # room for a 4th charge to show itself
    state = top_ups.get_state(customer_id)
    assert state.paused_reason == "declined_repeatedly"
    assert state.consecutive_failures == 3
    assert len(payment_intent_requests(server, customer_id)) == 3
    statuses = [a.status for a in top_ups.recent_attempts(customer_id)]
    assert statuses[0] == "paused"
    assert statuses[1:] == ["declined"] * 3
    wait_for(lambda: len(bus_events(server, customer_id, "AutoTopUpFailed")) == 3, "3 failures")
    paused = bus_event(server, customer_id, "AutoTopUpPaused")
    assert paused["reason"] == "declined_repeatedly"
    _status, body = api(server, "GET", customer_id, ROUTE)
    assert body["state"] == "paused"
    assert body["paused_reason"] == "declined_repeatedly"
    # Enabling again does not clear a pause; only a payment or a newly saved card does.
    enable(server, customer_id, threshold="1500", max_charges_per_day=10)
    assert top_ups.get_state(customer_id).paused_reason == "declined_repeatedly"
    save_card(server, customer_id, card="pm_card_visa")
    assert top_ups.get_state(customer_id).paused_reason is None


def test_authentication_required_pauses_with_a_link_and_paying_through_it_clears_the_pause(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore, ledger: Ledger
) -> None:
    save_card(server, customer_id, card="pm_card_authenticationRequired")
    enable(server, customer_id, threshold="1500")
    debit(customer_id, "cross", 600)
    (attempt,) = ended(top_ups, customer_id)
    assert attempt.status == "authentication_required"
    assert attempt.order_id
    _, body = api(server, "GET", customer_id, ROUTE)
    assert body["state"] == "needs_authentication"
    url = body["recovery_url"]
    assert url
    assert "/_local/checkout/" in url
    paused = bus_event(server, customer_id, "AutoTopUpPaused")
    assert paused["reason"] == "authentication_required"
    assert paused["recovery_url"] == url
    # The recovery Checkout is for the same packs, on the same order.
    session_id = url.rsplit("/", 1)[1]
    session = server.fake_stripe.sessions[session_id]
    assert session["amount_total"] == attempt.amount_cents
    assert session["metadata"]["order_id"] == attempt.order_id

    reply = server.serve_local("POST", f"/_local/checkout/{session_id}/pay", [], b"")
    assert reply is not None
    assert reply.status == 303
    credited(orders, customer_id, attempt.order_id)
    state = top_ups.get_state(customer_id)
    assert state.paused_reason is None
    assert state.recovery_url is None
    assert purchase_credits(ledger, customer_id, attempt.order_id) == [attempt.packs * STARTER_MT]
    _status, body = api(server, "GET", customer_id, ROUTE)
    assert body["state"] == "active"
    assert body["attempts"][0]["status"] == "recovered"
    assert body["attempts"][0]["credited"]
    assert_consistent(ledger, customer_id)


def test_a_timeout_then_a_500_then_success_is_one_charge_under_one_key(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore, ledger: Ledger
) -> None:
    save_card(server, customer_id)
    enable(server, customer_id, threshold="1500")
    server.fake_stripe.timeout_sleep_s = 2.0  # the client gives up after 1 s
    server.fake_stripe.faults_for = customer_id
    server.fake_stripe.faults[:] = ["timeout", "500"]
    debit(customer_id, "cross", 600)
    (attempt,) = ended(top_ups, customer_id)
    assert attempt.status == "succeeded", attempt
    assert attempt.stripe_requests == 3
    requests = payment_intent_requests(server, customer_id)
    assert len(requests) == 3
    assert {request["idempotency_key"] for request in requests} == {f"local:{attempt.attempt_id}"}
    assert len(charges(server, customer_id)) == 1
    assert attempt.order_id
    credited(orders, customer_id, attempt.order_id)
    time.sleep(0.5)
    assert purchase_credits(ledger, customer_id, attempt.order_id) == [attempt.packs * STARTER_MT]
    state = top_ups.get_state(customer_id)
    assert state.consecutive_failures == 0
    assert state.paused_reason is None
    assert not server.fake_stripe.violations


def test_a_refund_of_an_auto_top_up_claws_back_and_the_ledger_reconciles(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore, ledger: Ledger
) -> None:
    save_card(server, customer_id)
    enable(server, customer_id, threshold="1500")
    debit(customer_id, "cross", 600)  # 1,400
    (attempt,) = ended(top_ups, customer_id)
    assert attempt.order_id
    credited(orders, customer_id, attempt.order_id)
    order = orders.get(customer_id, attempt.order_id)
    assert order.kind == "auto_top_up"
    assert order.payment_intent_id
    (intent,) = charges(server, customer_id)
    refund = {
        "id": intent["latest_charge"],
        "object": "charge",
        "amount": intent["amount"],
        "amount_refunded": intent["amount"],
        "currency": "usd",
        "payment_intent": intent["id"],
        "refunded": True,
        "metadata": intent["metadata"],
    }
    server.deliver_stripe_event("charge.refunded", refund)
    server.deliver_stripe_event("charge.refunded", refund)  # a redelivery
    assert orders.get(customer_id, attempt.order_id).status == "refunded"
    assert assert_consistent(ledger, customer_id).balance_mt == 1_400_000
    # The clawback took available below the threshold again: no new charge for tokens the
    # card's owner just refused.
    time.sleep(1.5)
    assert len(charges(server, customer_id)) == 1
    assert len(top_ups.recent_attempts(customer_id)) == 1
    report = reconcile(ledger._client, TABLE)
    assert [f for f in report.findings if f.customer_id == customer_id] == []


def test_a_provider_outage_is_never_a_decline(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore
) -> None:
    save_card(server, customer_id)
    enable(server, customer_id, threshold="1500")
    server.fake_stripe.faults_for = customer_id
    server.fake_stripe.faults[:] = ["429", "500", "429", "500"]  # every request of the attempt
    debit(customer_id, "cross", 600)
    (attempt,) = ended(top_ups, customer_id)
    assert attempt.status == "provider_unavailable"
    assert attempt.stripe_requests == charge.STRIPE_REQUESTS_PER_ATTEMPT
    assert len(charges(server, customer_id)) == 0
    state = top_ups.get_state(customer_id)
    assert state.consecutive_failures == 0
    assert state.paused_reason is None
    assert state.in_flight is None
    assert attempt.order_id
    assert orders.get(customer_id, attempt.order_id).status == "pending"  # not failed
    failed = bus_event(server, customer_id, "AutoTopUpFailed")
    assert failed["reason"] == "provider_unavailable"


def test_a_charge_whose_every_answer_was_lost_is_credited_once_by_its_webhook(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore, ledger: Ledger
) -> None:
    save_card(server, customer_id)
    enable(server, customer_id, threshold="1500")
    server.fake_stripe.timeout_sleep_s = 1.5  # Stripe charges, the client never hears back
    server.fake_stripe.faults_for = customer_id
    server.fake_stripe.faults[:] = ["timeout"] * charge.STRIPE_REQUESTS_PER_ATTEMPT
    debit(customer_id, "cross", 600)
    (attempt,) = ended(top_ups, customer_id)
    assert attempt.status in ("provider_unavailable", "succeeded")  # the webhook may be first
    assert attempt.order_id
    credited(orders, customer_id, attempt.order_id)
    assert len(charges(server, customer_id)) == 1
    assert purchase_credits(ledger, customer_id, attempt.order_id) == [attempt.packs * STARTER_MT]
    recorded = wait_for(
        lambda: (a := top_ups.get_attempt(customer_id, attempt.version)) and a.credited and a,
        "the attempt marked credited",
    )
    assert recorded.status == "succeeded"
    assert top_ups.get_state(customer_id).consecutive_failures == 0


def test_only_the_cardholder_consents_support_may_only_stop_or_lower(
    server: DevServer, customer_id: str, top_ups: TopUpStore
) -> None:
    """Issue 21: an admin token for another customer cannot turn on, raise or redirect
    off-session charges of their card (403, nothing written); it may turn them off or
    lower the caps, recorded under the admin's subject. The cardholder works as before."""
    admin = identity.mint(admin=True)
    path = ROUTE.format(customer_id)

    def as_admin(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return http_json(server.url, "PUT", path, body, token=admin)

    save_card(server, customer_id)
    consent = {"enabled": True, "package_id": "starter", "max_cents_per_month": 10_000}
    consent["consent_text_version"] = CONSENT_VERSION
    status, body = as_admin(consent)  # enabling for a customer: the consent is theirs
    assert (status, body["error"]["code"]) == (403, "cardholder_only"), body
    assert top_ups.get_state(customer_id).settings_version == 0

    enabled = enable(server, customer_id, max_charges_per_day=3, max_cents_per_month=20_000)
    assert enabled["updated_by"] == enabled["consent"]["accepted_by"]
    before = top_ups.get_state(customer_id)
    for raise_or_redirect in (
        {"max_charges_per_day": 4},
        {"max_cents_per_month": 20_001},
        {"package_id": "growth"},
        {"target": "99999"},
        {"threshold": "1"},
    ):
        status, body = as_admin({"enabled": True, **raise_or_redirect})
        assert (status, body["error"]["code"]) == (403, "cardholder_only"), raise_or_redirect
    assert top_ups.get_state(customer_id) == before  # nothing written by any of them

    status, body = as_admin(
        {"enabled": True, "max_charges_per_day": 1, "max_cents_per_month": 5_000}
    )
    assert status == 200, body
    assert (body["max_charges_per_day"], body["max_cents_per_month"]) == (1, 5_000)
    assert body["consent"] == enabled["consent"]  # still the cardholder's
    assert body["updated_by"] != enabled["updated_by"]  # the admin's subject

    status, body = as_admin({"enabled": False})
    assert status == 200, body
    assert body["state"] == "disabled"
    status, body = as_admin({"enabled": True})  # and never back on
    assert (status, body["error"]["code"]) == (403, "cardholder_only")

    again = enable(server, customer_id, max_charges_per_day=5)  # the cardholder, as before
    assert (again["state"], again["max_charges_per_day"]) == ("active", 5)
    assert again["updated_by"] == again["consent"]["accepted_by"]


def test_a_revoked_stripe_key_is_the_operators_alarm_never_the_cards_decline(
    server: DevServer, customer_id: str, top_ups: TopUpStore, orders: OrderStore
) -> None:
    """Issue 21: the key is rolled or revoked in Stripe before the secret is updated; the
    fake Stripe answers the charger's key with Stripe's 401."""
    save_card(server, customer_id)
    enable(server, customer_id, threshold="1500")
    server.fake_stripe.revoked_keys = {os.environ["STRIPE_SECRET_KEY"]}
    try:
        debit(customer_id, "cross", 600)
        (attempt,) = ended(top_ups, customer_id)
    finally:
        server.fake_stripe.revoked_keys = set()
    assert attempt.status == "provider_auth_failed", attempt
    assert attempt.order_id
    assert orders.get(customer_id, attempt.order_id).status == "pending"  # not failed
    state = top_ups.get_state(customer_id)
    assert (state.consecutive_failures, state.paused_reason, state.in_flight) == (0, None, None)
    assert len(charges(server, customer_id)) == 0
    assert not bus_events(server, customer_id, "AutoTopUpFailed")  # nothing for the customer
