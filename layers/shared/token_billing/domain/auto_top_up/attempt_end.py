"""The end of a charged attempt: what its outcome does to the breaker (`decide_end`), written
once by the store under a condition on the state it was decided from, then told (metrics,
EventBridge). Every path of the charge ends here, exceptions included."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from token_billing.core.errors import ServiceUnavailable
from token_billing.core.observability import MetricUnit, logger, metrics
from token_billing.domain.auto_top_up.vocabulary import (
    FAILURES_BEFORE_PAUSE,
    ChargeOutcome,
    DisableReason,
    PauseReason,
)
from token_billing.store.top_up_records import Attempt, EndWrite, TopUpState
from token_billing.store.top_up_store import TopUpStore

# An outcome that is no verdict: the order stays pending, so the webhook may credit it
# before or after the end is recorded; whichever comes last marks the attempt succeeded.
NO_VERDICT: frozenset[ChargeOutcome] = frozenset({"provider_unavailable", "processing"})
# Ends that are the operator's to act on, never the customer's failure.
OPERATOR_OUTCOMES: frozenset[ChargeOutcome] = frozenset({"provider_auth_failed", "expired"})
# A TOPUP item that changed under the decision (a card saved, a pause cleared) is read
# and decided on again, a bounded number of times; then the stream retries the record.
END_DECISIONS = 5
END_BACKOFF_BASE_S = 0.02

Publish = Callable[[str, Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class StripeAnswer:
    """What Stripe said about the attempt's PaymentIntent, kept on the attempt."""

    payment_intent_id: str | None = None
    decline_code: str | None = None
    message: str | None = None
    requests: int = 0


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    """How one charged attempt ended and what that asks of auto top-up."""

    outcome: ChargeOutcome
    counts_as_failure: bool
    pause_reason: PauseReason | None = None
    recovery_url: str | None = None
    # Why no recovery link could be made (kept on the attempt; counted and alarmed).
    recovery_error: str | None = None
    disable_reason: DisableReason | None = None
    answer: StripeAnswer = field(default_factory=StripeAnswer)


def decide_end(state: TopUpState, end: AttemptEnd) -> EndWrite:
    """The breaker after this outcome: a success resets the failure count, a failure adds
    one and pauses at FAILURES_BEFORE_PAUSE, an outage (no verdict) leaves it as it was."""
    previous = state.consecutive_failures
    if end.outcome == "succeeded":
        failures = 0
    elif end.counts_as_failure:
        failures = previous + 1
    else:
        failures = previous  # a provider outage is no decline
    pause: PauseReason | None = end.pause_reason
    if pause is None and end.counts_as_failure and failures >= FAILURES_BEFORE_PAUSE:
        pause = "declined_repeatedly"
    return EndWrite(
        status=end.outcome,
        previous_failures=previous,
        consecutive_failures=failures,
        paused_reason=pause,
        recovery_url=end.recovery_url if pause else None,
        recovery_error=end.recovery_error,
        disabled_reason=end.disable_reason,
        payment_intent_id=end.answer.payment_intent_id,
        decline_code=end.answer.decline_code,
        message=end.answer.message,
        stripe_requests=end.answer.requests,
    )


def end_attempt(
    attempt: Attempt,
    end: AttemptEnd,
    *,
    store: TopUpStore,
    publish: Publish,
    sleep: Callable[[float], None],
) -> ChargeOutcome:
    """Record the attempt's end (freeing the in-flight slot), then tell it. Returns the
    outcome. The events go out after the record: a redelivery finds the attempt ended."""
    ended = _record_end(attempt, end, store, sleep)
    detail = {
        "id": attempt.attempt_id,
        "attempt_id": attempt.attempt_id,
        "customer_id": attempt.customer_id,
        "order_id": attempt.order_id,
        "packs": attempt.packs,
        "amount_cents": attempt.amount_cents,
        "currency": attempt.currency,
        "outcome": end.outcome,
        "reason": end.answer.decline_code or end.outcome,
        "payment_intent_id": end.answer.payment_intent_id,
    }
    if end.outcome == "succeeded":
        metrics.add_metric(name="AutoTopUpSucceeded", unit=MetricUnit.Count, value=1)
        _publish(publish, "AutoTopUpSucceeded", detail)
    elif end.outcome == "processing":
        # Neither a success nor a failure yet: payment_intent.succeeded credits it later.
        metrics.add_metric(name="AutoTopUpProcessing", unit=MetricUnit.Count, value=1)
    elif end.outcome in OPERATOR_OUTCOMES:
        # Nothing the customer did or can fix: no AutoTopUpFailed for them, an alarm for us.
        if end.outcome == "provider_auth_failed":
            metrics.add_metric(name="StripeAuthFailures", unit=MetricUnit.Count, value=1)
        else:
            metrics.add_metric(name="AutoTopUpExpired", unit=MetricUnit.Count, value=1)
        logger.error("auto top-up attempt not charged", extra={"outcome": end.outcome, **detail})
    else:
        metrics.add_metric(name="AutoTopUpFailures", unit=MetricUnit.Count, value=1)
        _publish(publish, "AutoTopUpFailed", detail)
    paused_reason = None
    if ended is not None:
        before, write = ended
        paused_reason = write.paused_reason or before.paused_reason
        if write.paused_reason and not before.paused_reason:
            metrics.add_metric(name="AutoTopUpPaused", unit=MetricUnit.Count, value=1)
            paused = {**detail, "reason": write.paused_reason, "recovery_url": write.recovery_url}
            _publish(publish, "AutoTopUpPaused", paused)
    logger.info(
        "auto top-up attempt ended",
        extra={"attempt_id": attempt.attempt_id, "outcome": end.outcome, "paused": paused_reason},
    )
    return end.outcome


def _record_end(
    attempt: Attempt, end: AttemptEnd, store: TopUpStore, sleep: Callable[[float], None]
) -> tuple[TopUpState, EndWrite] | None:
    """The state decided from and the end written; None when another delivery ended the
    attempt first. 1 GetItem + a transaction of 2 items per decision."""
    for decision in range(END_DECISIONS):
        if decision:
            sleep(random.uniform(0, END_BACKOFF_BASE_S * 2 ** (decision - 1)))
        state = store.get_state(attempt.customer_id)
        write = decide_end(state, end)
        result = store.finish(attempt, write)
        if result == "already_ended":
            return None
        if result == "ended":
            if end.outcome in NO_VERDICT:
                store.mark_paid_after_all(attempt.customer_id, attempt.version)
            return state, write
    raise ServiceUnavailable("the attempt's outcome could not be recorded; the stream retries")


def _publish(publish: Publish, detail_type: str, detail: Mapping[str, Any]) -> None:
    # After the outcome is recorded: a redelivery finds the attempt ended and stops, so a
    # failed put is logged and counted rather than retried (the outcome is what must last).
    try:
        publish(detail_type, detail)
    except Exception:
        metrics.add_metric(name="AutoTopUpEventsNotPut", unit=MetricUnit.Count, value=1)
        logger.exception("auto top-up event not put", extra={"detail_type": detail_type})
