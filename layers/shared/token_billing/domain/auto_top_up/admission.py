"""Auto top-up admission, from the ledger stream (never the debit path): a crossing of
*available* tokens below the threshold admits one attempt through one conditional write."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from token_billing.core.clock import utc_now_iso
from token_billing.core.observability import MetricUnit, logger, metrics
from token_billing.domain.auto_top_up.vocabulary import (
    DEFAULT_MAX_CHARGES_PER_DAY,
    KIND,
    MAX_PACKS_PER_ATTEMPT,
)
from token_billing.domain.catalog import CATALOG_VERSION, CURRENCY, TokenPackage, get_package
from token_billing.domain.purchases import new_order_id
from token_billing.store.order_records import PENDING, Order
from token_billing.store.stream_images import AccountChange
from token_billing.store.top_up_records import Admission, TopUpState
from token_billing.store.top_up_store import TopUpStore


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
