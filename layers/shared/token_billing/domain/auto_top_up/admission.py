"""Auto top-up admission, from the ledger stream (never the debit path): a crossing of
*available* tokens below the threshold admits one attempt through one conditional write
(`TopUpStore.admit`); when the write is refused, the domain names why (`refusal_reason`)
and records it, or decides again on the TOPUP item the refusal returned."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from token_billing.core.clock import utc_now_iso
from token_billing.core.errors import ServiceUnavailable
from token_billing.core.observability import MetricUnit, logger, metrics
from token_billing.domain.auto_top_up.vocabulary import (
    DEFAULT_MAX_CHARGES_PER_DAY,
    KIND,
    MAX_PACKS_PER_ATTEMPT,
    AdmissionOutcome,
    RefusalReason,
)
from token_billing.domain.catalog import CATALOG_VERSION, CURRENCY, TokenPackage, get_package
from token_billing.domain.purchases import new_order_id
from token_billing.store.order_records import PENDING, Order
from token_billing.store.stream_images import AccountChange
from token_billing.store.top_up_records import Admission, TopUpState
from token_billing.store.top_up_store import TopUpStore

# A lost race (a conflicting transaction) or settings changed between the read and the
# write: decided again on the item as it is, a bounded number of times; then the stream
# retries the record.
ADMISSION_DECISIONS = 5
ADMISSION_BACKOFF_BASE_S = 0.02


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
        self,
        store: TopUpStore,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sleep = sleep
        self._states: dict[str, TopUpState] = {}

    def on_account_change(self, change: AccountChange) -> AdmissionOutcome | None:
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
        if not crossed(state, change):
            return None
        outcome = self._admit(state, change)
        self._states.pop(change.customer_id, None)  # it changed if admitted
        if outcome is None:
            return None  # the settings as they are now see no crossing
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
        return outcome

    def _admit(self, state: TopUpState, change: AccountChange) -> AdmissionOutcome | None:
        for decision in range(ADMISSION_DECISIONS):
            if decision:
                self._sleep(random.uniform(0, ADMISSION_BACKOFF_BASE_S * 2 ** (decision - 1)))
                if not crossed(state, change):
                    return None
            decided = admit_crossing(
                state, change.version, change.available_mt, store=self._store, now=self._clock()
            )
            if not isinstance(decided, TopUpState):
                return decided
            state = decided
        raise ServiceUnavailable("auto top-up admission kept losing races; the stream retries")


def crossed(state: TopUpState, change: AccountChange) -> bool:
    """Whether this change took available tokens from the threshold or above to below it."""
    old = change.old_available_mt
    if not state.enabled or state.threshold_mt is None or old is None:
        return False
    return old >= state.threshold_mt > change.available_mt


def admission_for(state: TopUpState, version: int, available_mt: int, now: datetime) -> Admission:
    """The attempt this crossing asks for under these settings, with its pending order."""
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
    return Admission(
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


def admit_crossing(
    state: TopUpState, version: int, available_mt: int, *, store: TopUpStore, now: datetime
) -> AdmissionOutcome | TopUpState:
    """Admit one attempt for this crossing, or record why not: the outcome. When nothing
    was decided (a lost race, or the settings moved on since `state` was read), the TOPUP
    item to decide on again."""
    admission = admission_for(state, version, available_mt, now)
    if card_expired(state, now) and state.card:
        store.remove_card(state.customer_id, state.card.payment_method_id, reason="card_expired")
        store.record_refusal(admission, "card_expired")
        return "card_expired"
    if admission.order.price_cents > admission.max_cents_per_month:
        # This one attempt alone is above the monthly cap: no write can admit it.
        store.record_refusal(admission, "monthly_cap_reached")
        return "monthly_cap_reached"
    result = store.admit(state, admission)
    if result.status == "admitted" or result.status == "duplicate":
        return result.status
    if result.status == "lost_race":
        return state  # nothing written: the same decision, tried again
    assert result.current is not None, "a refusal returns the item its condition saw"
    reason = refusal_reason(result.current, admission)
    if reason is None:
        return result.current  # the settings moved on: decide again on them
    store.record_refusal(admission, reason)
    return reason


def refusal_reason(state: TopUpState, admission: Admission) -> RefusalReason | None:
    """Why the state refused this admission, in the order a customer would want to hear it;
    None when nothing refuses it any more (the settings changed: decide again)."""
    if not state.exists or not state.enabled:
        return "disabled"
    if state.card is None:
        return "no_card"
    if state.paused_reason:
        return "paused"
    if state.settings_version != admission.settings_version:
        return None
    if state.charges_on(admission.day) >= admission.max_charges_per_day:
        return "cap_reached"
    if (
        state.cents_in(admission.month) + admission.order.price_cents
        > admission.max_cents_per_month
    ):
        return "monthly_cap_reached"
    if state.in_flight:
        return "in_flight"
    return None
