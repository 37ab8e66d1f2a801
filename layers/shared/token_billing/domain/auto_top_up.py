"""Auto top-up: when available tokens cross below the customer's threshold, buy the fewest
packs that reach the target with the saved card, once per need, within caps, loudly.

Three steps, three functions, each in its own Lambda:

- settings (`update_settings`, `settings_view`): what the customer asked for, with consent;
- admission (`TopUpTrigger.on_account_change`, in the ledger stream, never on the debit
  path): a crossing of *available* tokens admits one attempt through one conditional write
  (`store.top_up_state.TopUpStore.admit`), which also writes the attempt's pending order;
- the charge (`charge_attempt`, in the charger, the only one of the three that loads
  stripe): ONE off-session PaymentIntent for all the packs, keyed by the attempt id, retried
  under that key on provider errors, ended in a recorded outcome on every path.

The tokens come through the webhook's exactly-once order credit (`auto_top_up_webhooks`).

Cost: a ledger-stream batch reads each customer's TOPUP item once when its available tokens
went down (0.5 RCU, eventually consistent); a crossing that admits is one transaction of 3
items (about 6 WCU); an attempt's end is 1 GetItem + a transaction of 2 items.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from token_billing.core.clock import utc_now_iso
from token_billing.core.errors import InvalidRequest
from token_billing.core.observability import MetricUnit, logger, metrics
from token_billing.core.units import format_tokens
from token_billing.domain.catalog import (
    CATALOG_VERSION,
    CURRENCY,
    LOW_BALANCE_MT,
    TokenPackage,
    UnknownCatalogItem,
    get_package,
)
from token_billing.domain.purchases import new_order_id, with_query
from token_billing.integrations.checkout_session import CheckoutSession
from token_billing.integrations.off_session_payment import OffSessionResult
from token_billing.store.order_records import PENDING, Order
from token_billing.store.orders import OrderStore
from token_billing.store.stream_images import AccountChange
from token_billing.store.top_up_state import (
    ADMITTED,
    Admission,
    Attempt,
    SettingsWrite,
    TopUpState,
    TopUpStore,
)

KIND = "auto_top_up"
RECOVERY_KIND = "auto_top_up_recovery"
EVENT_SOURCE = "token-billing"
CONSENT_VERSION = "2026-12-01"
CONSENT_TEXT = (
    "I authorise this service to charge my saved card for the selected token pack, without "
    "asking me each time, whenever my available tokens fall below my threshold: at most my "
    "daily number of charges and my monthly amount. I can turn auto top-up off at any time."
)
DEFAULT_THRESHOLD_MT = LOW_BALANCE_MT
DEFAULT_MAX_CHARGES_PER_DAY = 2
MAX_CHARGES_PER_DAY = 10
MAX_THRESHOLD_MT = 1_000_000_000  # a million tokens
MAX_CENTS_PER_MONTH = 1_000_000  # $10,000
MAX_PACKS_PER_ATTEMPT = 10
FAILURES_BEFORE_PAUSE = 3
# Provider errors (5xx, 429, timeouts) are retried under the same idempotency key; bounded
# so one attempt never outlives the charger's Lambda timeout: 4 requests, 1 + 2 + 4 s apart.
STRIPE_REQUESTS_PER_ATTEMPT = 4
STRIPE_BACKOFF_BASE_S = 1.0
RECOVERY_EXPIRES_S = 23 * 3600  # Stripe allows Checkout sessions up to 24 h
ATTEMPTS_SHOWN = 10


# ---- settings ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingsRequest:
    enabled: bool
    package_id: str | None = None
    threshold_mt: int | None = None
    target_mt: int | None = None
    max_charges_per_day: int | None = None
    max_cents_per_month: int | None = None
    consent_text_version: str | None = None


@dataclass(frozen=True, slots=True)
class TopUpView:
    customer_id: str
    state: TopUpState
    status: str  # disabled | active | paused | needs_authentication
    package: TokenPackage | None
    threshold_mt: int
    target_mt: int
    max_charges_per_day: int
    attempts: list[Attempt]


def _package(package_id: str) -> TokenPackage:
    try:
        return get_package(package_id)
    except UnknownCatalogItem as error:
        raise InvalidRequest(str(error), field="package_id") from None


def status_of(state: TopUpState) -> str:
    if not state.enabled:
        return "disabled"
    if state.paused_reason == "authentication_required":
        return "needs_authentication"
    if state.paused_reason:
        return "paused"
    return "active"


def settings_view(customer_id: str, *, store: TopUpStore) -> TopUpView:
    """GET: settings (or their defaults), card, state, the last 10 attempts. 2 reads."""
    state = store.get_state(customer_id)
    package = get_package(state.package_id) if state.package_id else None
    threshold = state.threshold_mt if state.threshold_mt is not None else DEFAULT_THRESHOLD_MT
    target = state.target_mt
    if target is None:
        target = threshold + (package.total_mt if package else 0)
    return TopUpView(
        customer_id=customer_id,
        state=state,
        status=status_of(state),
        package=package,
        threshold_mt=threshold,
        target_mt=target,
        max_charges_per_day=state.max_charges_per_day or DEFAULT_MAX_CHARGES_PER_DAY,
        attempts=store.recent_attempts(customer_id, limit=ATTEMPTS_SHOWN),
    )


def validated_settings(
    request: SettingsRequest, current: TopUpState, *, caller: str, now: str
) -> SettingsWrite:
    """The write a PUT makes, or InvalidRequest naming the field; nothing is written before."""
    package_id = request.package_id or current.package_id
    if request.enabled and not package_id:
        raise InvalidRequest("package_id is required to enable auto top-up", field="package_id")
    package = _package(package_id or "starter")
    threshold = DEFAULT_THRESHOLD_MT if request.threshold_mt is None else request.threshold_mt
    if not 0 <= threshold <= MAX_THRESHOLD_MT:
        raise InvalidRequest(
            f"threshold must be between 0 and {format_tokens(MAX_THRESHOLD_MT)} tokens",
            field="threshold",
        )
    target = threshold + package.total_mt if request.target_mt is None else request.target_mt
    if target <= threshold:
        raise InvalidRequest("target must be above threshold", field="target")
    if target - threshold > MAX_PACKS_PER_ATTEMPT * package.total_mt:
        raise InvalidRequest(
            f"target may be at most {MAX_PACKS_PER_ATTEMPT} packs above threshold",
            field="target",
        )
    per_day = (
        DEFAULT_MAX_CHARGES_PER_DAY
        if request.max_charges_per_day is None
        else request.max_charges_per_day
    )
    if not 1 <= per_day <= MAX_CHARGES_PER_DAY:
        raise InvalidRequest(
            f"max_charges_per_day must be between 1 and {MAX_CHARGES_PER_DAY}",
            field="max_charges_per_day",
        )
    cap = request.max_cents_per_month
    if cap is None and request.enabled:
        raise InvalidRequest(
            "max_cents_per_month is required when enabling auto top-up",
            field="max_cents_per_month",
        )
    if cap is not None and not package.price_cents <= cap <= MAX_CENTS_PER_MONTH:
        raise InvalidRequest(
            f"max_cents_per_month must be between one pack ({package.price_cents}) and "
            f"{MAX_CENTS_PER_MONTH}",
            field="max_cents_per_month",
        )
    consent_version = consent_at = consent_by = None
    if request.enabled:
        if request.consent_text_version != CONSENT_VERSION:
            raise InvalidRequest(
                f"enabling needs consent: send consent_text_version {CONSENT_VERSION!r} "
                "after showing its text",
                field="consent_text_version",
            )
        consent_version, consent_at, consent_by = CONSENT_VERSION, now, caller
    return SettingsWrite(
        enabled=request.enabled,
        package_id=package.package_id,
        threshold_mt=threshold,
        target_mt=target,
        max_charges_per_day=per_day,
        max_cents_per_month=cap,
        consent_version=consent_version,
        consent_at=consent_at,
        consent_by=consent_by,
    )


def update_settings(
    customer_id: str, request: SettingsRequest, *, caller: str, store: TopUpStore
) -> TopUpView:
    """PUT: validate everything, then one conditional UpdateItem (enabling needs a card)."""
    current = store.get_state(customer_id)
    write = validated_settings(request, current, caller=caller, now=utc_now_iso())
    store.write_settings(customer_id, write)
    logger.info(
        "auto top-up settings written",
        extra={"customer_id": customer_id, "enabled": write.enabled, "by": caller},
    )
    return settings_view(customer_id, store=store)


def stripe_customer_for(
    customer_id: str, *, store: TopUpStore, create: Callable[[str], str]
) -> str:
    """The customer's one Stripe Customer: the id kept on our side, or a new one kept now."""
    kept = store.get_state(customer_id).stripe_customer_id
    if kept:
        return kept
    return store.attach_stripe_customer(customer_id, create(customer_id))


# ---- admission, from the ledger stream ---------------------------------------------------


def attempt_id_of(customer_id: str, version: int) -> str:
    """The attempt's id and Stripe idempotency key: the crossing's own account version, so a
    redelivered crossing names the same attempt (and Stripe keys are account-wide)."""
    return f"atu_{customer_id}_{version}"


def packs_needed(package: TokenPackage, available_mt: int, target_mt: int) -> int:
    """The fewest packs that lift available to the target: a gap of 2.5 packs is 3."""
    gap = max(target_mt - available_mt, 1)
    return min(-(-gap // package.total_mt), MAX_PACKS_PER_ATTEMPT)


def card_expired(state: TopUpState, today: datetime) -> bool:
    card = state.card
    if card is None or not card.exp_year or not card.exp_month:
        return False
    return (card.exp_year, card.exp_month) < (today.year, today.month)


class TopUpTrigger:
    """One per stream batch: each customer's TOPUP item is read at most once per batch."""

    def __init__(
        self, store: TopUpStore, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._store = store
        self._clock = clock
        self._states: dict[str, TopUpState] = {}

    def on_account_change(self, change: AccountChange) -> str | None:
        """The admission's outcome when this change crossed the customer's threshold in
        available tokens (holds are already spent); None when it was no crossing."""
        old = change.old_available_mt
        if old is None or change.available_mt >= old:
            return None  # only a write that lowered available tokens can cross
        if change.clawed_back_delta_mt > 0:
            # A refund or dispute took the tokens back: buying them again at once would
            # charge the card for what its owner just refused (a refund -> charge loop).
            return None
        state = self._states.get(change.customer_id)
        if state is None:
            state = self._store.get_state(change.customer_id, consistent=False)
            self._states[change.customer_id] = state
        if not state.enabled or state.threshold_mt is None:
            return None
        if not old >= state.threshold_mt > change.available_mt:
            return None
        outcome = admit_crossing(
            state, change.version, change.available_mt, store=self._store, now=self._clock()
        )
        metrics.add_metric(name="AutoTopUpCrossings", unit=MetricUnit.Count, value=1)
        if outcome == "admitted":
            metrics.add_metric(name="AutoTopUpAdmitted", unit=MetricUnit.Count, value=1)
        if outcome in ("cap_reached", "monthly_cap_reached"):
            metrics.add_metric(name="AutoTopUpCapReached", unit=MetricUnit.Count, value=1)
        logger.info(
            "auto top-up crossing",
            extra={
                "customer_id": change.customer_id,
                "version": change.version,
                "outcome": outcome,
            },
        )
        self._states.pop(change.customer_id, None)  # it changed if admitted
        return outcome


def admit_crossing(
    state: TopUpState, version: int, available_mt: int, *, store: TopUpStore, now: datetime
) -> str:
    """Admit one attempt for this crossing, or record why not. Returns the outcome."""
    assert state.package_id and state.target_mt is not None
    package = get_package(state.package_id)
    packs = packs_needed(package, available_mt, state.target_mt)
    order = Order(
        order_id=new_order_id(),
        customer_id=state.customer_id,
        package_id=package.package_id,
        catalog_version=CATALOG_VERSION,
        price_cents=package.price_cents * packs,
        currency=CURRENCY,
        tokens_mt=package.tokens_mt * packs,
        bonus_mt=package.bonus_mt * packs,
        status=PENDING,
        created_at=utc_now_iso(),
        kind=KIND,
        packs=packs,
        attempt_version=version,
    )
    admission = Admission(
        attempt_id=attempt_id_of(state.customer_id, version),
        version=version,
        order=order,
        packs=packs,
        available_mt=available_mt,
        target_mt=state.target_mt,
        settings_version=state.settings_version,
        max_charges_per_day=state.max_charges_per_day or DEFAULT_MAX_CHARGES_PER_DAY,
        max_cents_per_month=state.max_cents_per_month or 0,
        day=now.strftime("%Y-%m-%d"),
        month=now.strftime("%Y-%m"),
    )
    if card_expired(state, now) and state.card:
        store.remove_card(state.customer_id, state.card.payment_method_id, reason="card_expired")
        store.record_refusal(admission, "card_expired")
        return "card_expired"
    if order.price_cents > admission.max_cents_per_month:
        # This one attempt alone is above the monthly cap: no write can admit it.
        store.record_refusal(admission, "monthly_cap_reached")
        return "monthly_cap_reached"
    return store.admit(state, admission).outcome


# ---- the charge, in the charger function -------------------------------------------------


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
