"""The charge of an admitted attempt, in the charger function (the only auto top-up step
that loads stripe): ONE off-session PaymentIntent for all the packs, keyed by the attempt
id, retried under that key on provider errors, ended in a recorded outcome on every path."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from token_billing.core.observability import MetricUnit, logger, metrics
from token_billing.domain.auto_top_up.vocabulary import FAILURES_BEFORE_PAUSE, KIND, RECOVERY_KIND
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


Publish = Callable[[str, Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class RecoveryUrls:
    success_url: str
    cancel_url: str


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
) -> str:
    """Charge one admitted attempt and record its outcome; a redelivery of an ended attempt
    does nothing. Every path, exceptions included, ends in a recorded outcome."""
    attempt = store.get_attempt(customer_id, version)
    if attempt is None or attempt.status != ADMITTED:
        return "already_ended"
    requests = 0
    try:
        state = store.get_state(customer_id)
        assert attempt.order_id
        order = orders.get(customer_id, attempt.order_id)
        if state.card is None or not state.stripe_customer_id:
            return _end(
                store, attempt, publish, outcome="error", failure=True, message="no saved card"
            )
        params = payment_intent_params(order, state, attempt)
        result, requests = _confirm_with_retries(gateway, params, attempt.attempt_id, sleep)
        return _settle(
            result, requests, attempt, order, state, store, orders, gateway, publish, recovery_urls
        )
    except Exception as error:
        logger.exception("auto top-up attempt failed", extra={"attempt_id": attempt.attempt_id})
        return _end(
            store,
            attempt,
            publish,
            outcome="error",
            failure=True,
            message=f"{type(error).__name__}: {error}",
            requests=requests,
        )


def _settle(
    result: OffSessionResult,
    requests: int,
    attempt: Attempt,
    order: Order,
    state: TopUpState,
    store: TopUpStore,
    orders: OrderStore,
    gateway: PaymentGateway,
    publish: Publish,
    recovery_urls: RecoveryUrls | None,
) -> str:
    common: dict[str, Any] = {
        "payment_intent_id": result.payment_intent_id,
        "requests": requests,
        "message": result.message,
    }
    if result.status == "succeeded":
        return _end(store, attempt, publish, outcome="succeeded", failure=False, **common)
    if result.status == "processing":
        # Not a success yet (a stalled 3-D Secure is no success): the webhook credits it.
        return _end(store, attempt, publish, outcome="processing", failure=False, **common)
    if result.status == "retryable":
        # Unknown, not declined: never counted. The order stays pending, so a charge Stripe
        # did make under this key is still credited by its payment_intent.succeeded.
        return _end(
            store, attempt, publish, outcome="provider_unavailable", failure=False, **common
        )
    if result.status == "authentication_required":
        url = None
        if recovery_urls is not None:
            try:
                session = gateway.create_checkout(
                    recovery_checkout_params(order, state, recovery_urls, now_s=int(time.time())),
                    idempotency_key=f"recovery-{order.order_id}",
                )
                orders.attach_session(
                    order,
                    session_id=session.session_id,
                    checkout_url=session.url,
                    expires_at=session.expires_at,
                )
                url = session.url
            except Exception:
                logger.exception("recovery checkout not created", extra={"order": order.order_id})
        return _end(
            store,
            attempt,
            publish,
            outcome="authentication_required",
            failure=True,
            pause_reason="authentication_required",
            recovery_url=url,
            decline_code=result.code,
            **common,
        )
    orders.mark(order, "failed", flag_reason=f"auto top-up {result.code}")
    disable = "card_expired" if result.code == "expired_card" else None
    outcome = "declined" if result.status == "declined" else "error"
    return _end(
        store,
        attempt,
        publish,
        outcome=outcome,
        failure=True,
        decline_code=result.code,
        disable_reason=disable,
        **common,
    )


def _end(
    store: TopUpStore,
    attempt: Attempt,
    publish: Publish,
    *,
    outcome: str,
    failure: bool,
    pause_reason: str | None = None,
    recovery_url: str | None = None,
    payment_intent_id: str | None = None,
    decline_code: str | None = None,
    message: str | None = None,
    requests: int = 0,
    disable_reason: str | None = None,
) -> str:
    before_paused = store.get_state(attempt.customer_id).paused_reason
    after = store.finish(
        attempt,
        outcome=outcome,
        counts_as_failure=failure,
        pause_after_failures=FAILURES_BEFORE_PAUSE,
        pause_reason=pause_reason,
        recovery_url=recovery_url,
        payment_intent_id=payment_intent_id,
        decline_code=decline_code,
        message=message,
        stripe_requests=requests,
        disable_reason=disable_reason,
    )
    detail = {
        "id": attempt.attempt_id,
        "attempt_id": attempt.attempt_id,
        "customer_id": attempt.customer_id,
        "order_id": attempt.order_id,
        "packs": attempt.packs,
        "amount_cents": attempt.amount_cents,
        "currency": attempt.currency,
        "outcome": outcome,
        "reason": decline_code or outcome,
        "payment_intent_id": payment_intent_id,
    }
    if outcome == "succeeded":
        metrics.add_metric(name="AutoTopUpSucceeded", unit=MetricUnit.Count, value=1)
        _publish(publish, "AutoTopUpSucceeded", detail)
    elif outcome == "processing":
        # Neither a success nor a failure yet: payment_intent.succeeded credits it later.
        metrics.add_metric(name="AutoTopUpProcessing", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="AutoTopUpFailures", unit=MetricUnit.Count, value=1)
        _publish(publish, "AutoTopUpFailed", detail)
    if after.paused_reason and not before_paused:
        metrics.add_metric(name="AutoTopUpPaused", unit=MetricUnit.Count, value=1)
        paused = {**detail, "reason": after.paused_reason, "recovery_url": after.recovery_url}
        _publish(publish, "AutoTopUpPaused", paused)
    logger.info(
        "auto top-up attempt ended",
        extra={"attempt_id": attempt.attempt_id, "outcome": outcome, "paused": after.paused_reason},
    )
    return outcome


def _publish(publish: Publish, detail_type: str, detail: Mapping[str, Any]) -> None:
    # After the outcome is recorded: a redelivery finds the attempt ended and stops, so a
    # failed put is logged and counted rather than retried (the outcome is what must last).
    try:
        publish(detail_type, detail)
    except Exception:
        metrics.add_metric(name="AutoTopUpEventsNotPut", unit=MetricUnit.Count, value=1)
        logger.exception("auto top-up event not put", extra={"detail_type": detail_type})
