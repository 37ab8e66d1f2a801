"""Stripe Checkout and webhook signatures through the official SDK.

Only the purchase and webhook functions import this module, and both need `stripe` on every
request, so it loads with the module, during init (where Lambda runs at full CPU), not on
the first request. No other function imports it (tests/unit/test_cold_imports.py).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import stripe

from token_billing.core.errors import ServiceUnavailable
from token_billing.integrations.checkout_session import CheckoutSession
from token_billing.integrations.stripe_config import stripe_settings

# Stripe retries idempotent requests itself on network errors and 409/5xx answers.
STRIPE_NETWORK_RETRIES = 2
# Stripe's default: a signed event older than this is a replay.
WEBHOOK_TOLERANCE_S = 300


@cache
def stripe_client() -> stripe.StripeClient:
    settings = stripe_settings()
    base_addresses: Any = {"api": settings.api_base} if settings.api_base else None
    return stripe.StripeClient(
        settings.secret_key,
        base_addresses=base_addresses,
        max_network_retries=STRIPE_NETWORK_RETRIES,
    )


def create_checkout_session(params: dict[str, Any], *, idempotency_key: str) -> CheckoutSession:
    """Create a Checkout Session; the same idempotency key returns the same session."""
    try:
        session = stripe_client().v1.checkout.sessions.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key},
        )
    except (stripe.APIConnectionError, stripe.RateLimitError) as error:
        raise ServiceUnavailable("Stripe could not be reached; retry the purchase") from error
    except stripe.APIError as error:
        raise ServiceUnavailable("Stripe failed to create the checkout; retry") from error
    assert session.url is not None
    assert session.expires_at is not None
    return CheckoutSession(session.id, session.url, int(session.expires_at))


def verify_webhook(payload: bytes, signature_header: str) -> dict[str, Any]:
    """The event, if `payload` carries a valid Stripe signature within the tolerance.

    Raises ValueError for a bad signature, a stale timestamp or a malformed body.
    """
    settings = stripe_settings()
    text = payload.decode("utf-8", errors="strict")
    try:
        stripe.WebhookSignature.verify_header(
            text, signature_header, settings.webhook_secret, WEBHOOK_TOLERANCE_S
        )
    except stripe.SignatureVerificationError as error:
        raise ValueError(f"invalid Stripe signature: {error.user_message or error}") from None
    try:
        event = json.loads(text)
    except RecursionError:  # nested deeper than any Stripe event: json.loads ran out of stack
        raise ValueError("the payload is not a Stripe event") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise ValueError("the payload is not a Stripe event")
    return event
