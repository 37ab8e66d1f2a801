"""Stripe Checkout and webhook signatures through the official SDK.

Only the purchase and webhook functions import this module, and both need `stripe` on every
request, so it loads with the module, during init (where Lambda runs at full CPU), not on
the first request. No other function imports it (tests/unit/test_cold_imports.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache, partial
from typing import Any

import stripe

from token_billing.core.errors import ServiceUnavailable
from token_billing.integrations.checkout_session import CheckoutSession
from token_billing.integrations.off_session_payment import OffSessionResult, PaymentStatus
from token_billing.integrations.stripe_config import stripe_settings

# Stripe retries idempotent requests itself on network errors and 409/5xx answers.
STRIPE_NETWORK_RETRIES = 2
# Stripe keeps an idempotency key for 24 hours: past that, the same key is a new request.
IDEMPOTENCY_WINDOW_S = 24 * 3600
# Stripe's default: a signed event older than this is a replay.
WEBHOOK_TOLERANCE_S = 300


def stripe_client() -> stripe.StripeClient:
    """The client for the secret key in force: the secret is re-read within its cache time
    (`stripe_config.SECRET_CACHE_S`), and a rolled key gets a new client at once."""
    settings = stripe_settings()
    return _client_for(settings.secret_key, settings.api_base)


@lru_cache(maxsize=2)  # the key in force, and the one it replaced while a roll settles
def _client_for(secret_key: str, api_base: str | None) -> stripe.StripeClient:
    base_addresses: Any = {"api": api_base} if api_base else None
    return stripe.StripeClient(
        secret_key, base_addresses=base_addresses, max_network_retries=STRIPE_NETWORK_RETRIES
    )


def scoped_key(idempotency_key: str) -> str:
    """The idempotency key Stripe sees: ours, prefixed with the stack's name, so that two
    stacks on one Stripe account (dev and prod on a test account) never share a key."""
    return f"{os.environ.get('STACK_NAME') or 'local'}:{idempotency_key}"


def create_checkout_session(params: dict[str, Any], *, idempotency_key: str) -> CheckoutSession:
    """Create a Checkout Session; the same idempotency key returns the same session."""
    try:
        session = stripe_client().v1.checkout.sessions.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": scoped_key(idempotency_key)},
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


# ---- auto top-up: Stripe Customers and off-session PaymentIntents -------------------------

# The charger retries provider errors itself (with backoff, under the attempt's key), so its
# client neither retries nor waits Stripe's default 80 s for an answer.
OFF_SESSION_TIMEOUT_S = 10.0


def off_session_client() -> stripe.StripeClient:
    """Like `stripe_client`, for the charger: no retries of Stripe's own, a short timeout."""
    settings = stripe_settings()
    timeout_s = float(os.environ.get("STRIPE_TIMEOUT_S", OFF_SESSION_TIMEOUT_S))
    return _off_session_client_for(settings.secret_key, settings.api_base, timeout_s)


@lru_cache(maxsize=2)
def _off_session_client_for(
    secret_key: str, api_base: str | None, timeout_s: float
) -> stripe.StripeClient:
    base_addresses: Any = {"api": api_base} if api_base else None
    return stripe.StripeClient(
        secret_key,
        base_addresses=base_addresses,
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=timeout_s),
    )


def forget_clients() -> None:
    """Drop the cached clients (tests switch Stripe endpoints between cases)."""
    _client_for.cache_clear()
    _off_session_client_for.cache_clear()


def create_stripe_customer(customer_id: str) -> str:
    """The Stripe Customer for one of our customers; keyed by our id, so a retry or a racing
    purchase gets the same one (the caller keeps its id on our side)."""
    try:
        customer = stripe_client().v1.customers.create(
            params={"metadata": {"customer_id": customer_id}},
            options={"idempotency_key": scoped_key(f"customer-{customer_id}")},
        )
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
        raise ServiceUnavailable("Stripe could not be reached; retry the purchase") from error
    return str(customer.id)


def _payment_intent_id(error: stripe.StripeError) -> str | None:
    body = error.json_body if isinstance(error.json_body, dict) else {}
    intent = (body.get("error") or {}).get("payment_intent") or {}
    return str(intent["id"]) if isinstance(intent, dict) and intent.get("id") else None


# A card that needs its holder on-session: a PaymentIntent says `authentication_required`,
# paying an invoice off-session may say `invoice_payment_intent_requires_action`.
AUTHENTICATION_CODES = frozenset(
    {"authentication_required", "invoice_payment_intent_requires_action"}
)


def _answer(send: Callable[[], Any]) -> tuple[Any, OffSessionResult | None]:
    """Send one charger request: (Stripe's reply, None), or (None, what its error means)."""
    try:
        return send(), None
    except stripe.CardError as error:
        code = error.code or "card_declined"
        status: PaymentStatus = (
            "authentication_required" if code in AUTHENTICATION_CODES else "declined"
        )
        body = error.json_body if isinstance(error.json_body, dict) else {}
        decline = (body.get("error") or {}).get("decline_code")
        failure = OffSessionResult(
            status,
            payment_intent_id=_payment_intent_id(error),
            code=str(decline or code),
            message=error.user_message or str(error),
        )
    except (stripe.APIConnectionError, stripe.RateLimitError) as error:
        failure = OffSessionResult("retryable", message=f"{type(error).__name__}: {error}")
    except (stripe.AuthenticationError, stripe.PermissionError) as error:
        # Our key, not the customer's card: a revoked or rolled key, a restricted key
        # without the permission. The operator's problem, never a decline.
        failure = OffSessionResult(
            "provider_auth_failed", code=error.code, message=f"{error.http_status}: {error}"
        )
    except stripe.StripeError as error:
        if (error.http_status or 500) >= 500 or error.http_status == 409:
            failure = OffSessionResult("retryable", message=f"{error.http_status}: {error}")
        elif error.code in AUTHENTICATION_CODES:
            failure = OffSessionResult("authentication_required", code=error.code)
        else:
            failure = OffSessionResult("failed", code=error.code, message=str(error))
    return None, failure


def _keyed(idempotency_key: str) -> Any:
    return {"idempotency_key": scoped_key(idempotency_key)}


class StripePaymentGateway:
    """Off-session charges (a PaymentIntent, or an invoice paid off-session) and recovery
    Checkouts, classified for the auto top-up domain."""

    def confirm_off_session(
        self, params: dict[str, Any], *, idempotency_key: str
    ) -> OffSessionResult:
        client = off_session_client()
        intent, failure = _answer(
            lambda: client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options=_keyed(idempotency_key),
            )
        )
        return failure or _result_of(intent)

    def open_invoice(
        self, invoice: dict[str, Any], items: list[dict[str, Any]], *, idempotency_key: str
    ) -> OffSessionResult:
        """The draft invoice (key `<key>:invoice`), its lines (`<key>:item-<n>`), finalized
        (`<key>:finalize`): `processing` with its `invoice_id` when it awaits payment. A
        retry under the same key returns the same invoice, never a second one."""
        client = off_session_client()
        created, failure = _answer(
            lambda: client.v1.invoices.create(
                params=invoice,  # type: ignore[arg-type]
                options=_keyed(f"{idempotency_key}:invoice"),
            )
        )
        if failure is not None:
            return failure
        for number, item in enumerate(items):
            params: Any = {**item, "invoice": created.id}
            _, failure = _answer(
                partial(
                    client.v1.invoice_items.create,
                    params=params,
                    options=_keyed(f"{idempotency_key}:item-{number}"),
                )
            )
            if failure is not None:
                return replace(failure, invoice_id=created.id)
        finalized, failure = _answer(
            lambda: client.v1.invoices.finalize_invoice(
                created.id,
                params={"auto_advance": False},
                options=_keyed(f"{idempotency_key}:finalize"),
            )
        )
        if failure is not None:
            return replace(failure, invoice_id=created.id)
        return OffSessionResult("processing", invoice_id=created.id, raw=finalized.to_dict())

    def pay_invoice(
        self, invoice_id: str, params: dict[str, Any], *, idempotency_key: str
    ) -> OffSessionResult:
        """Pay a finalized invoice off-session with the saved card (`<key>:pay`)."""
        client = off_session_client()
        paid, failure = _answer(
            lambda: client.v1.invoices.pay(
                invoice_id,
                params=params,  # type: ignore[arg-type]
                options=_keyed(f"{idempotency_key}:pay"),
            )
        )
        if failure is not None:
            return replace(failure, invoice_id=invoice_id)
        return _invoice_result(paid)

    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> None:
        """Void an invoice whose payment failed: no unpaid invoice stays open for a charge
        that did not happen (`<key>:void`)."""
        off_session_client().v1.invoices.void_invoice(
            invoice_id, options=_keyed(f"{idempotency_key}:void")
        )

    def find_invoice(self, metadata_key: str, value: str) -> OffSessionResult | None:
        """The invoice whose metadata names `value` (as `find_payment_intent`)."""
        client = off_session_client()
        query = f"metadata['{metadata_key}']:'{value}'"
        found, failure = _answer(
            lambda: client.v1.invoices.search(params={"query": query, "limit": 1})
        )
        if failure is not None:
            if failure.status == "retryable":
                return failure
            raise RuntimeError(f"invoice search refused: {failure.code} {failure.message}")
        return _invoice_result(found.data[0]) if found.data else None

    def create_checkout(self, params: dict[str, Any], *, idempotency_key: str) -> CheckoutSession:
        return create_checkout_session(params, idempotency_key=idempotency_key)

    def expire_checkout(self, session_id: str) -> None:
        """Expire an open Checkout Session nobody will be sent to (an orphan)."""
        stripe_client().v1.checkout.sessions.expire(session_id)

    def find_payment_intent(self, metadata_key: str, value: str) -> OffSessionResult | None:
        """The PaymentIntent whose metadata names `value`, as a charge result (its `raw`
        object kept for a credit); None when Stripe holds none. Stripe's search index lags
        by about a minute: use it for attempts far older than that."""
        try:
            found = off_session_client().v1.payment_intents.search(
                params={"query": f"metadata['{metadata_key}']:'{value}'", "limit": 1}
            )
        except (stripe.APIConnectionError, stripe.RateLimitError) as error:
            return OffSessionResult("retryable", message=f"{type(error).__name__}: {error}")
        except stripe.StripeError as error:
            if (error.http_status or 500) >= 500:
                return OffSessionResult("retryable", message=f"{error.http_status}: {error}")
            raise
        if not found.data:
            return None
        return _result_of(found.data[0])


def _invoice_result(invoice: Any) -> OffSessionResult:
    """An invoice's status as the auto top-up domain reads it: paid is a success, open
    awaits its payment, anything else (draft, void, uncollectible) was never paid."""
    raw = invoice.to_dict() if hasattr(invoice, "to_dict") else dict(invoice)
    if invoice.status == "paid":
        return OffSessionResult("succeeded", invoice_id=invoice.id, raw=raw)
    if invoice.status == "open":
        return OffSessionResult("processing", invoice_id=invoice.id, raw=raw)
    return OffSessionResult(
        "declined", invoice_id=invoice.id, code=f"invoice_{invoice.status}", raw=raw
    )


def _result_of(intent: Any) -> OffSessionResult:
    """A PaymentIntent's status as the auto top-up domain reads it."""
    raw = intent.to_dict() if hasattr(intent, "to_dict") else dict(intent)
    if intent.status == "succeeded":
        return OffSessionResult("succeeded", payment_intent_id=intent.id, raw=raw)
    if intent.status == "requires_action":
        return OffSessionResult(
            "authentication_required",
            payment_intent_id=intent.id,
            code="requires_action",
            raw=raw,
        )
    if intent.status == "processing":
        return OffSessionResult("processing", payment_intent_id=intent.id, raw=raw)
    return OffSessionResult(
        "declined", payment_intent_id=intent.id, code=f"status_{intent.status}", raw=raw
    )
