"""The charger's edges a security review found (issue 21), against DynamoDB Local with a
scripted Stripe: our own key refused is never the customer's decline; a recovery link that
cannot be made is recorded, counted and never left as an orphan; an attempt older than
Stripe's 24 h idempotency window is looked up, never sent blind."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import dynamodb_local
from tests.integration.helpers import assert_consistent, fund
from token_billing.core.observability import metrics
from token_billing.domain.auto_top_up import charge
from token_billing.domain.auto_top_up.admission import admit_crossing
from token_billing.domain.auto_top_up.settings import (
    CONSENT_VERSION,
    SettingsAuthor,
    SettingsRequest,
    validated_settings,
)
from token_billing.domain.auto_top_up.webhooks import payment_intent_succeeded
from token_billing.integrations.checkout_session import CheckoutSession
from token_billing.integrations.off_session_payment import OffSessionResult
from token_billing.store.holds import HoldLedger
from token_billing.store.ledger import Ledger
from token_billing.store.orders import OrderStore
from token_billing.store.top_up_records import Attempt, SavedCard
from token_billing.store.top_up_store import TopUpStore

pytestmark = pytest.mark.integration
DAY_S = 24 * 3600


class ScriptedStripe:
    """Stripe as the charger sees it, answering what the test scripted."""

    def __init__(self) -> None:
        self.answers: list[OffSessionResult] = []
        self.confirmed: list[str] = []
        self.checkout_error: Exception | None = None
        self.sessions: list[str] = []
        self.expired: list[str] = []
        self.found: OffSessionResult | None = None
        self.lookups: list[str] = []

    def confirm_off_session(
        self, params: dict[str, Any], *, idempotency_key: str
    ) -> OffSessionResult:
        self.confirmed.append(idempotency_key)
        return self.answers.pop(0)

    def create_checkout(self, params: dict[str, Any], *, idempotency_key: str) -> CheckoutSession:
        if self.checkout_error is not None:
            raise self.checkout_error
        session_id = f"cs_test_{len(self.sessions)}"
        self.sessions.append(session_id)
        return CheckoutSession(session_id, f"https://checkout.test/{session_id}", 2_000_000_000)

    def expire_checkout(self, session_id: str) -> None:
        self.expired.append(session_id)

    def find_payment_intent(self, metadata_key: str, value: str) -> OffSessionResult | None:
        assert metadata_key == "attempt_id"
        self.lookups.append(value)
        return self.found


@pytest.fixture
def stores(ddb_local: dynamodb_local.DynamoDBLocal) -> tuple[TopUpStore, OrderStore]:
    client = ddb_local.client()
    return TopUpStore(client, "LedgerTable"), OrderStore(client, "LedgerTable")


@pytest.fixture
def customer_id() -> str:
    return f"cust_charger_{time.time_ns()}"


@pytest.fixture(autouse=True)
def no_metrics_left() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def admitted(customer_id: str, ledger: Ledger, top_ups: TopUpStore, *, version: int = 7) -> Attempt:
    """A customer with a saved card and auto top-up on, and one admitted attempt."""
    fund(ledger, customer_id, 1_000_000, key=f"fund-{version}")
    top_ups.attach_stripe_customer(customer_id, f"cus_{customer_id}")
    card = SavedCard(f"pm_{customer_id}", "visa", "4242", 12, 2034)
    top_ups.save_card(customer_id, card, saved_at="2026-12-01T00:00:00.000000Z")
    request = SettingsRequest(
        enabled=True,
        package_id="starter",
        threshold_mt=1_500_000,
        max_charges_per_day=10,
        max_cents_per_month=100_000,
        consent_text_version=CONSENT_VERSION,
    )
    state = top_ups.get_state(customer_id)
    author = SettingsAuthor("sub", is_cardholder=True)
    top_ups.write_settings(customer_id, validated_settings(request, state, author=author, now="t"))
    state = top_ups.get_state(customer_id)
    assert admit_crossing(state, version, 900_000, store=top_ups, now=datetime.now(UTC)) == (
        "admitted"
    )
    attempt = top_ups.get_attempt(customer_id, version)
    assert attempt is not None
    return attempt


def run(
    attempt: Attempt,
    top_ups: TopUpStore,
    orders: OrderStore,
    stripe: ScriptedStripe,
    *,
    clock_offset_s: float = 0,
    credit_found: Any = None,
) -> str:
    return charge.charge_attempt(
        attempt.customer_id,
        attempt.version,
        store=top_ups,
        orders=orders,
        gateway=stripe,
        publish=lambda *_: None,
        recovery_urls=charge.RecoveryUrls("https://app.test/ok", "https://app.test/cancel"),
        sleep=lambda _: None,
        credit_found=credit_found,
        clock=lambda: time.time() + clock_offset_s,
    )


def counted(name: str) -> bool:
    return name in metrics.metric_set


def test_our_key_refused_three_times_never_trips_the_breaker_nor_fails_the_order(
    ledger: Ledger, stores: tuple[TopUpStore, OrderStore], customer_id: str
) -> None:
    top_ups, orders = stores
    for version in (7, 8, 9):
        attempt = admitted(customer_id, ledger, top_ups, version=version)
        stripe = ScriptedStripe()
        stripe.answers = [OffSessionResult("provider_auth_failed", message="401: Invalid API Key")]
        assert run(attempt, top_ups, orders, stripe) == "provider_auth_failed"
        assert attempt.order_id
        assert orders.get(customer_id, attempt.order_id).status == "pending"  # not failed
    state = top_ups.get_state(customer_id)
    assert (state.consecutive_failures, state.paused_reason, state.in_flight) == (0, None, None)
    assert counted("StripeAuthFailures")
    assert not counted("AutoTopUpFailures")  # the customer's card is not to blame


def test_a_recovery_link_that_cannot_be_made_is_recorded_counted_and_never_empty(
    ledger: Ledger, stores: tuple[TopUpStore, OrderStore], customer_id: str
) -> None:
    top_ups, orders = stores
    attempt = admitted(customer_id, ledger, top_ups)
    stripe = ScriptedStripe()
    stripe.answers = [OffSessionResult("authentication_required", code="authentication_required")]
    stripe.checkout_error = RuntimeError("Stripe refused the Checkout")
    assert run(attempt, top_ups, orders, stripe) == "authentication_required"
    ended = top_ups.get_attempt(customer_id, attempt.version)
    assert ended is not None
    assert ended.recovery_error == "RuntimeError: Stripe refused the Checkout"
    state = top_ups.get_state(customer_id)
    assert state.paused_reason == "authentication_required"
    assert state.recovery_url is None  # no empty or dead link is shown
    assert counted("AutoTopUpRecoveryLinkFailures")


def test_a_recovery_session_that_could_not_be_attached_is_expired_not_left_open(
    ledger: Ledger,
    stores: tuple[TopUpStore, OrderStore],
    customer_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    top_ups, orders = stores
    attempt = admitted(customer_id, ledger, top_ups)
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized: PutItem"}},
        "PutItem",
    )

    def refuse(*_: Any, **__: Any) -> None:
        raise denied

    monkeypatch.setattr(OrderStore, "attach_session", refuse)
    stripe = ScriptedStripe()
    stripe.answers = [OffSessionResult("authentication_required", code="authentication_required")]
    run(attempt, top_ups, orders, stripe)
    assert stripe.expired == stripe.sessions == ["cs_test_0"]  # the orphan is closed
    ended = top_ups.get_attempt(customer_id, attempt.version)
    assert ended is not None
    assert ended.recovery_error is not None
    assert "AccessDeniedException" in ended.recovery_error
    assert top_ups.get_state(customer_id).recovery_url is None


def test_an_attempt_past_the_idempotency_window_never_charged_is_closed_unsent(
    ledger: Ledger, stores: tuple[TopUpStore, OrderStore], customer_id: str
) -> None:
    top_ups, orders = stores
    attempt = admitted(customer_id, ledger, top_ups)
    stripe = ScriptedStripe()  # Stripe holds no PaymentIntent for it
    assert run(attempt, top_ups, orders, stripe, clock_offset_s=DAY_S) == "expired"
    assert stripe.lookups == [attempt.attempt_id]
    assert stripe.confirmed == []  # never sent again blind
    assert attempt.order_id
    assert orders.get(customer_id, attempt.order_id).status == "expired"
    state = top_ups.get_state(customer_id)
    assert (state.consecutive_failures, state.in_flight) == (0, None)
    assert counted("AutoTopUpExpired")


def test_an_attempt_past_the_window_that_was_paid_is_credited_once_from_the_lookup(
    ledger: Ledger, stores: tuple[TopUpStore, OrderStore], customer_id: str
) -> None:
    top_ups, orders = stores
    attempt = admitted(customer_id, ledger, top_ups)
    assert attempt.order_id
    order = orders.get(customer_id, attempt.order_id)
    paid: Mapping[str, Any] = {
        **charge.payment_intent_params(order, top_ups.get_state(customer_id), attempt),
        "id": "pi_paid_a_day_ago",
        "status": "succeeded",
        "amount_received": order.price_cents,
    }
    stripe = ScriptedStripe()
    stripe.found = OffSessionResult("succeeded", payment_intent_id=paid["id"], raw=paid)
    hold_ledger = HoldLedger(ledger._client, "LedgerTable")

    def credit(pi: Mapping[str, Any]) -> object:
        return payment_intent_succeeded(pi, orders=orders, ledger=hold_ledger, top_ups=top_ups)

    before = assert_consistent(ledger, customer_id).balance_mt
    outcome = run(attempt, top_ups, orders, stripe, clock_offset_s=DAY_S, credit_found=credit)
    assert outcome == "succeeded"
    assert stripe.confirmed == []
    assert orders.get(customer_id, attempt.order_id).status == "paid"
    after = assert_consistent(ledger, customer_id).balance_mt
    assert after - before == order.tokens_mt + order.bonus_mt
    # Its webhook arriving later, too, credits nothing more.
    payment_intent_succeeded(paid, orders=orders, ledger=hold_ledger, top_ups=top_ups)
    assert assert_consistent(ledger, customer_id).balance_mt == after


def test_our_own_errors_three_times_never_trip_the_breaker_nor_fail_the_order(
    ledger: Ledger,
    stores: tuple[TopUpStore, OrderStore],
    customer_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A DynamoDB throttle on the charger's read of the order (after botocore's own retries)
    ends the attempt as `error` and frees the slot, but the card is not to blame: no failure
    counted, no pause, the order still pending."""
    top_ups, orders = stores
    throttled = ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
        "GetItem",
    )
    real_get = OrderStore.get
    for version in (7, 8, 9):
        attempt = admitted(customer_id, ledger, top_ups, version=version)

        def throttle(*_: Any, **__: Any) -> None:
            raise throttled

        monkeypatch.setattr(OrderStore, "get", throttle)
        stripe = ScriptedStripe()
        assert run(attempt, top_ups, orders, stripe) == "error"
        monkeypatch.setattr(OrderStore, "get", real_get)
        assert stripe.confirmed == []  # nothing was charged
        assert attempt.order_id
        assert orders.get(customer_id, attempt.order_id).status == "pending"
        ended = top_ups.get_attempt(customer_id, version)
        assert ended is not None
        assert ended.status == "error"
        assert "ProvisionedThroughputExceededException" in (ended.message or "")
    state = top_ups.get_state(customer_id)
    assert (state.consecutive_failures, state.paused_reason, state.in_flight) == (0, None, None)
