"""The charge of an admitted attempt, in the charger function (the only auto top-up step
that loads stripe): ONE off-session PaymentIntent for all the packs, keyed by the attempt
id, retried under that key on provider errors, ended in a recorded outcome on every path."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from token_billing.core.observability import MetricUnit, logger, metrics
from token_billing.domain.auto_top_up.attempt_end import (
    AttemptEnd,
    Publish,
    StripeAnswer,
    end_attempt,
)
from token_billing.domain.auto_top_up.vocabulary import KIND, RECOVERY_KIND, ChargeResult
from token_billing.domain.catalog import get_package
from token_billing.domain.purchases import with_query
from token_billing.integrations.checkout_session import CheckoutSession
from token_billing.integrations.off_session_payment import OffSessionResult
from token_billing.store.order_records import Order
from token_billing.store.orders import OrderStore
from token_billing.store.top_up_records import ADMITTED, Attempt, TopUpState
from token_billing.store.top_up_store import TopUpStore

# Provider errors (5xx, 429, timeouts) are retried under the same idempotency key; bounded
# so one attempt never outlives the charger's Lambda timeout: 4 requests, 1 + 2 + 4 s apart.
STRIPE_REQUESTS_PER_ATTEMPT = 4
STRIPE_BACKOFF_BASE_S = 1.0
RECOVERY_EXPIRES_S = 23 * 3600  # Stripe allows Checkout sessions up to 24 h


class PaymentGateway(Protocol):
    """Stripe, as the charger uses it (`integrations.stripe_gateway`, or a test's fake)."""

    def confirm_off_session(
        self, params: dict[str, Any], *, idempotency_key: str
    ) -> OffSessionResult: ...

    def create_checkout(
        self, params: dict[str, Any], *, idempotency_key: str
    ) -> CheckoutSession: ...


@dataclass(frozen=True, slots=True)
class RecoveryUrls:
    success_url: str
    cancel_url: str


@dataclass(frozen=True, slots=True)
class ChargeContext:
    """What charging an attempt works with: the stores, Stripe, the event bus, the clock."""

    store: TopUpStore
    orders: OrderStore
    gateway: PaymentGateway
    publish: Publish
    recovery_urls: RecoveryUrls | None
    sleep: Callable[[float], None]

    def end(self, attempt: Attempt, end: AttemptEnd) -> ChargeResult:
        """Record how the attempt ended, then tell it (`attempt_end.end_attempt`)."""
        return end_attempt(attempt, end, store=self.store, publish=self.publish, sleep=self.sleep)


def payment_intent_params(order: Order, state: TopUpState, attempt: Attempt) -> dict[str, Any]:
    """ONE off-session PaymentIntent for every pack: amount from the catalog x packs."""
    assert state.card is not None and state.stripe_customer_id
    package = get_package(order.package_id)
    assert order.price_cents == package.price_cents * order.packs
    return {
        "amount": order.price_cents,
        "currency": order.currency,
        "customer": state.stripe_customer_id,
        "payment_method": state.card.payment_method_id,
        "off_session": True,
        "confirm": True,
        "description": f"Auto top-up: {order.packs} x {package.name} token pack",
        "metadata": {
            "customer_id": order.customer_id,
            "order_id": order.order_id,
            "package_id": order.package_id,
            "packs": str(order.packs),
            "kind": KIND,
            "attempt_id": attempt.attempt_id,
            "catalog_version": order.catalog_version,
        },
    }


def recovery_checkout_params(
    order: Order, state: TopUpState, urls: RecoveryUrls, *, now_s: int
) -> dict[str, Any]:
    """An on-session Checkout for the same packs, saving the card again for later charges."""
    package = get_package(order.package_id)
    metadata = {
        "customer_id": order.customer_id,
        "package_id": order.package_id,
        "order_id": order.order_id,
        "catalog_version": order.catalog_version,
        "kind": RECOVERY_KIND,
        "packs": str(order.packs),
    }
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": order.packs,
                "price_data": {
                    "currency": order.currency,
                    "unit_amount": package.price_cents,
                    "product_data": {"name": f"{package.name} token pack (auto top-up)"},
                },
            }
        ],
        "client_reference_id": order.customer_id,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata, "setup_future_usage": "off_session"},
        "success_url": with_query(
            urls.success_url, order_id=order.order_id, session_id="{CHECKOUT_SESSION_ID}"
        ),
        "cancel_url": with_query(urls.cancel_url, order_id=order.order_id),
        "expires_at": now_s + RECOVERY_EXPIRES_S,
    }
    if state.stripe_customer_id:
        params["customer"] = state.stripe_customer_id
    return params


def _confirm_with_retries(
    gateway: PaymentGateway,
    params: dict[str, Any],
    key: str,
    sleep: Callable[[float], None],
) -> tuple[OffSessionResult, int]:
    result = OffSessionResult("retryable", message="not sent")
    for request_number in range(STRIPE_REQUESTS_PER_ATTEMPT):
        if request_number:
            metrics.add_metric(name="AutoTopUpProviderRetries", unit=MetricUnit.Count, value=1)
            sleep(STRIPE_BACKOFF_BASE_S * 2 ** (request_number - 1))
        result = gateway.confirm_off_session(params, idempotency_key=key)
        if result.status != "retryable":
            return result, request_number + 1
        logger.warning(
            "Stripe did not answer the auto top-up; retrying under the same key",
            extra={"attempt_id": key, "reason": result.message},
        )
    return result, STRIPE_REQUESTS_PER_ATTEMPT


def charge_attempt(
    customer_id: str,
    version: int,
    *,
    store: TopUpStore,
    orders: OrderStore,
    gateway: PaymentGateway,
    publish: Publish,
    recovery_urls: RecoveryUrls | None,
    sleep: Callable[[float], None] = time.sleep,
) -> ChargeResult:
    """Charge one admitted attempt and record its outcome; a redelivery of an ended attempt
    does nothing. Every path, exceptions included, ends in a recorded outcome."""
    context = ChargeContext(store, orders, gateway, publish, recovery_urls, sleep)
    attempt = store.get_attempt(customer_id, version)
    if attempt is None or attempt.status != ADMITTED:
        return "already_ended"
    requests = 0
    try:
        state = store.get_state(customer_id)
        assert attempt.order_id
        order = orders.get(customer_id, attempt.order_id)
        if state.card is None or not state.stripe_customer_id:
            no_card = StripeAnswer(message="no saved card")
            return context.end(attempt, AttemptEnd("error", counts_as_failure=True, answer=no_card))
        params = payment_intent_params(order, state, attempt)
        result, requests = _confirm_with_retries(gateway, params, attempt.attempt_id, sleep)
        return context.end(attempt, _settle(context, order, state, result, requests))
    except Exception as error:
        logger.exception("auto top-up attempt failed", extra={"attempt_id": attempt.attempt_id})
        failed = StripeAnswer(message=f"{type(error).__name__}: {error}", requests=requests)
        return context.end(attempt, AttemptEnd("error", counts_as_failure=True, answer=failed))


def _settle(
    context: ChargeContext,
    order: Order,
    state: TopUpState,
    result: OffSessionResult,
    requests: int,
) -> AttemptEnd:
    """What Stripe's answer means for the attempt (a decline fails its order here)."""
    answer = StripeAnswer(result.payment_intent_id, message=result.message, requests=requests)
    if result.status == "succeeded":
        return AttemptEnd("succeeded", counts_as_failure=False, answer=answer)
    if result.status == "processing":
        # Not a success yet (a stalled 3-D Secure is no success): the webhook credits it.
        return AttemptEnd("processing", counts_as_failure=False, answer=answer)
    if result.status == "retryable":
        # Unknown, not declined: never counted. The order stays pending, so a charge Stripe
        # did make under this key is still credited by its payment_intent.succeeded.
        return AttemptEnd("provider_unavailable", counts_as_failure=False, answer=answer)
    answer = replace(answer, decline_code=result.code)
    if result.status == "authentication_required":
        return AttemptEnd(
            "authentication_required",
            counts_as_failure=True,
            pause_reason="authentication_required",
            recovery_url=_recovery_checkout(context, order, state),
            answer=answer,
        )
    context.orders.mark(order, "failed", flag_reason=f"auto top-up {result.code}")
    return AttemptEnd(
        "declined" if result.status == "declined" else "error",
        counts_as_failure=True,
        disable_reason="card_expired" if result.code == "expired_card" else None,
        answer=answer,
    )


def _recovery_checkout(context: ChargeContext, order: Order, state: TopUpState) -> str | None:
    """The on-session Checkout that pays the same order and clears the pause; None when
    it is not configured or could not be created (the pause stands either way)."""
    if context.recovery_urls is None:
        return None
    try:
        session = context.gateway.create_checkout(
            recovery_checkout_params(order, state, context.recovery_urls, now_s=int(time.time())),
            idempotency_key=f"recovery-{order.order_id}",
        )
        context.orders.attach_session(
            order,
            session_id=session.session_id,
            checkout_url=session.url,
            expires_at=session.expires_at,
        )
    except Exception:
        logger.exception("recovery checkout not created", extra={"order": order.order_id})
        return None
    return session.url
