"""The webhook checks Stripe's signature before anything else: every bad delivery is a 400
that reads and changes nothing."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests import stripe_events
from tests.conftest import FakeLambdaContext
from token_billing.store.ledger import Ledger


@pytest.fixture
def webhook(moto_table: str) -> Iterator[Any]:
    saved = dict(os.environ)
    os.environ.update(
        STAGE="local",
        STRIPE_SECRET_KEY="sk_test_unit",
        STRIPE_WEBHOOK_SECRET=stripe_events.WEBHOOK_SECRET,
    )
    import webhook_handler

    yield webhook_handler.lambda_handler
    os.environ.clear()
    os.environ.update(saved)


def deliver(handler: Any, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = handler(request, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def completed_event_body() -> bytes:
    session = stripe_events.checkout_session(
        session_id="cs_test_1",
        customer_id="cust_sig",
        order_id="ord_1",
        package_id="starter",
        amount_total=1_900,
    )
    return stripe_events.event_body("checkout.session.completed", session)


def test_a_valid_signature_is_accepted(webhook: Any) -> None:
    body = stripe_events.event_body("customer.created", {"id": "cus_1"})
    status, reply = deliver(webhook, stripe_events.webhook_request(body))
    assert status == 200
    assert reply["action"] == "ignored"


@pytest.mark.parametrize(
    ("case", "request_of"),
    [
        (
            "forged body",
            lambda body: {
                **stripe_events.webhook_request(body),
                "body": body.decode().replace("1900", "1"),
            },
        ),
        (
            "stale timestamp",
            lambda body: stripe_events.webhook_request(body, timestamp=int(time.time()) - 301),
        ),
        ("missing header", lambda body: stripe_events.webhook_request(body, signature="")),
        ("wrong secret", lambda body: stripe_events.webhook_request(body, secret="whsec_other")),
        ("garbage header", lambda body: stripe_events.webhook_request(body, signature="t=1,v1=00")),
    ],
)
def test_bad_deliveries_are_400_and_credit_nothing(
    webhook: Any, moto_ledger: Ledger, case: str, request_of: Any
) -> None:
    status, reply = deliver(webhook, request_of(completed_event_body()))
    assert status == 400, case
    assert reply["error"]["code"] == "invalid_request"
    assert moto_ledger.get_account("cust_sig") is None


def test_malformed_json_with_a_valid_signature_is_400(webhook: Any) -> None:
    status, reply = deliver(webhook, stripe_events.webhook_request(b"{not json"))
    assert status == 400
    assert reply["error"]["code"] == "invalid_request"


def test_an_event_for_an_unknown_order_changes_nothing(webhook: Any, moto_ledger: Ledger) -> None:
    status, reply = deliver(webhook, stripe_events.webhook_request(completed_event_body()))
    assert (status, reply["action"]) == (200, "ignored")
    assert moto_ledger.get_account("cust_sig") is None
