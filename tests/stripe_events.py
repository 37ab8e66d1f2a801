"""Stripe events for tests, built from Stripe's own fixture objects and signed the way
Stripe signs them (HMAC-SHA256 over "<t>.<payload>")."""

from __future__ import annotations

import copy
import json
import secrets
from functools import cache
from pathlib import Path
from typing import Any

from local.apigw import http_api_event
from local.stripe_wire import sign

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
WEBHOOK_SECRET = "whsec_test_secret"


@cache
def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def fixture(name: str) -> dict[str, Any]:
    return copy.deepcopy(_fixture(name))


def checkout_session(
    *,
    session_id: str,
    customer_id: str,
    order_id: str,
    package_id: str,
    amount_total: int,
    currency: str = "usd",
    payment_status: str = "paid",
    payment_intent: str | None = None,
    tax: int = 0,
    invoice: str | None = None,
) -> dict[str, Any]:
    """A Checkout Session paying `amount_total` before tax (the catalog price), plus `tax`."""
    session = fixture("checkout.session")
    metadata = {"customer_id": customer_id, "order_id": order_id, "package_id": package_id}
    session.update(
        id=session_id,
        amount_subtotal=amount_total,
        amount_total=amount_total + tax,
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": tax},
        invoice=invoice,
        currency=currency,
        client_reference_id=customer_id,
        metadata=metadata,
        mode="payment",
        payment_status=payment_status,
        status="complete" if payment_status == "paid" else "open",
        payment_intent=payment_intent or "pi_" + secrets.token_hex(12),
    )
    return session


def charge(*, payment_intent: str, amount: int, amount_refunded: int) -> dict[str, Any]:
    obj = fixture("charge")
    obj.update(
        id="ch_" + payment_intent.removeprefix("pi_"),
        amount=amount,
        amount_captured=amount,
        amount_refunded=amount_refunded,
        refunded=amount_refunded >= amount,
        payment_intent=payment_intent,
        currency="usd",
    )
    return obj


def dispute(*, payment_intent: str, amount: int, dispute_id: str | None = None) -> dict[str, Any]:
    obj = fixture("dispute")
    obj.update(
        id=dispute_id or "dp_" + secrets.token_hex(8),
        amount=amount,
        charge="ch_" + payment_intent.removeprefix("pi_"),
        payment_intent=payment_intent,
        currency="usd",
    )
    return obj


def payment_intent(
    *, payment_intent_id: str, amount: int, metadata: dict[str, str]
) -> dict[str, Any]:
    obj = fixture("payment_intent")
    obj.update(
        id=payment_intent_id,
        amount=amount,
        amount_received=amount,
        status="succeeded",
        metadata=metadata,
    )
    return obj


def event_body(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> bytes:
    event = fixture("event")
    event.update(
        id=event_id or "evt_" + secrets.token_hex(12),
        type=event_type,
        data={"object": obj},
        livemode=False,
    )
    return json.dumps(event).encode()


def webhook_request(
    body: bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    signature: str | None = None,
) -> dict[str, Any]:
    """The API Gateway v2 event of Stripe POSTing `body` to /webhooks/stripe."""
    headers = [("content-type", "application/json; charset=utf-8"), ("user-agent", "Stripe/1.0")]
    header = signature if signature is not None else sign(body, secret, timestamp)
    if header:
        headers.append(("stripe-signature", header))
    return http_api_event(
        "POST",
        "/webhooks/stripe",
        route_key="POST /webhooks/stripe",
        headers=headers,
        body=body,
    )
