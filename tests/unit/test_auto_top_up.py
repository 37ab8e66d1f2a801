"""Auto top-up decisions that need no table: packs, settings validation, refusal reasons,
the PaymentIntent's parameters, the breaker at the end of an attempt."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

import pytest

from token_billing.core.errors import InvalidRequest, ServiceUnavailable
from token_billing.domain.account_changes import low_balance_crossing
from token_billing.domain.auto_top_up.admission import (
    ADMISSION_DECISIONS,
    TopUpTrigger,
    attempt_id_of,
    packs_needed,
    refusal_reason,
)
from token_billing.domain.auto_top_up.attempt_end import (
    END_DECISIONS,
    AttemptEnd,
    StripeAnswer,
    decide_end,
    end_attempt,
)
from token_billing.domain.auto_top_up.charge import payment_intent_params
from token_billing.domain.auto_top_up.settings import (
    CONSENT_VERSION,
    SettingsAuthor,
    SettingsRequest,
    validated_settings,
)
from token_billing.domain.auto_top_up.vocabulary import MAX_PACKS_PER_ATTEMPT
from token_billing.domain.catalog import get_package
from token_billing.store.order_records import Order
from token_billing.store.stream_images import AccountChange
from token_billing.store.top_up_records import (
    Admission,
    AdmissionResult,
    Attempt,
    EndWrite,
    SavedCard,
    TopUpState,
)
from token_billing.store.top_up_store import TopUpStore

STARTER = get_package("starter")  # 2,000 tokens for $19
EMPTY = TopUpState(customer_id="c1", exists=False)

CARDHOLDER = SettingsAuthor("sub-1", is_cardholder=True)


def test_the_fewest_packs_reach_the_target() -> None:
    assert packs_needed(STARTER, available_mt=900_000, target_mt=5_900_000) == 3  # 2.5 packs
    assert packs_needed(STARTER, available_mt=1_000_000, target_mt=3_000_000) == 1  # exactly 1
    assert packs_needed(STARTER, available_mt=1_000_000, target_mt=3_000_001) == 2
    assert packs_needed(STARTER, available_mt=5_000_000, target_mt=3_000_000) == 1  # at least 1
    # A clawback can leave available far below zero: still one bounded attempt.
    assert packs_needed(STARTER, available_mt=-(10**12), target_mt=0) == MAX_PACKS_PER_ATTEMPT


def test_settings_defaults_and_consent() -> None:
    request = SettingsRequest(
        enabled=True,
        package_id="growth",
        max_cents_per_month=10_000,
        consent_text_version=CONSENT_VERSION,
    )
    write = validated_settings(request, EMPTY, author=CARDHOLDER, now="2026-12-01T00:00:00Z")
    assert (write.threshold_mt, write.target_mt) == (500_000, 500_000 + 6_500_000)
    assert write.max_charges_per_day == 2
    assert (write.consent_version, write.consent_by) == (CONSENT_VERSION, "sub-1")
    off = validated_settings(SettingsRequest(enabled=False), EMPTY, author=CARDHOLDER, now="t")
    assert off.consent_version is None
    assert off.max_cents_per_month is None


@pytest.mark.parametrize(
    "change",
    [
        {"consent_text_version": None},
        {"consent_text_version": "2020-01-01"},
        {"max_cents_per_month": None},
        {"max_cents_per_month": 100},  # below one pack: it could never charge
        {"max_cents_per_month": 10**9},
        {"package_id": "nope"},
        {"threshold_mt": 1_000_000, "target_mt": 1_000_000},
        {"threshold_mt": -1},
        {"target_mt": 500_000 + 11 * 6_500_000},  # more than 10 packs above the threshold
        {"max_charges_per_day": 0},
        {"max_charges_per_day": 11},
    ],
)
def test_invalid_settings_are_refused(change: dict[str, object]) -> None:
    request = SettingsRequest(
        enabled=True,
        package_id="growth",
        max_cents_per_month=10_000,
        consent_text_version=CONSENT_VERSION,
    )
    with pytest.raises(InvalidRequest):
        validated_settings(replace(request, **change), EMPTY, author=CARDHOLDER, now="t")  # type: ignore[arg-type]


def admission(price_cents: int = 1_900, settings_version: int = 1) -> Admission:
    order = Order(
        order_id="ord_1",
        customer_id="c1",
        package_id="starter",
        catalog_version="v",
        price_cents=price_cents,
        currency="usd",
        tokens_mt=2_000_000,
        bonus_mt=0,
        status="pending",
        created_at="t",
        kind="auto_top_up",
    )
    return Admission(
        attempt_id="atu_c1_7",
        version=7,
        order=order,
        packs=1,
        available_mt=1,
        target_mt=2,
        settings_version=settings_version,
        max_charges_per_day=2,
        max_cents_per_month=4_000,
        day="2026-12-01",
        month="2026-12",
    )


CARD = SavedCard("pm_1", "visa", "4242", 12, 2034)
ACTIVE = TopUpState(customer_id="c1", exists=True, enabled=True, card=CARD, settings_version=1)


def test_refusal_reasons_in_the_order_a_customer_needs_them() -> None:
    assert refusal_reason(EMPTY, admission()) == "disabled"
    assert refusal_reason(replace(ACTIVE, card=None), admission()) == "no_card"
    assert refusal_reason(replace(ACTIVE, paused_reason="x"), admission()) == "paused"
    counted = replace(ACTIVE, counters={"charges_2026-12-01": 2})
    assert refusal_reason(counted, admission()) == "cap_reached"
    spent = replace(ACTIVE, counters={"cents_2026-12": 2_500})
    assert refusal_reason(spent, admission()) == "monthly_cap_reached"
    assert refusal_reason(replace(ACTIVE, in_flight="atu_c1_6"), admission()) == "in_flight"
    # Yesterday's count and last month's cents do not count today.
    old = replace(ACTIVE, counters={"charges_2026-11-30": 9, "cents_2026-11": 9_999})
    assert refusal_reason(old, admission()) is None
    # Other settings than the ones decided on: decide again.
    assert refusal_reason(ACTIVE, admission(settings_version=2)) is None


def test_one_off_session_payment_intent_for_every_pack() -> None:
    order = replace(admission().order, packs=3, price_cents=3 * 1_900, tokens_mt=6_000_000)
    state = replace(ACTIVE, stripe_customer_id="cus_1")
    attempt = Attempt(
        customer_id="c1",
        version=7,
        attempt_id=attempt_id_of("c1", 7),
        status="admitted",
        created_at="t",
    )
    params = payment_intent_params(order, state, attempt)
    assert params["amount"] == 5_700
    assert (params["off_session"], params["confirm"]) == (True, True)
    assert (params["customer"], params["payment_method"]) == ("cus_1", "pm_1")
    assert params["metadata"]["packs"] == "3"
    assert params["metadata"]["order_id"] == "ord_1"
    assert params["metadata"]["attempt_id"] == "atu_c1_7"


def change(old_balance: int, old_available: int, balance: int, available: int) -> AccountChange:
    return AccountChange(
        customer_id="c1",
        version=9,
        updated_at="2026-12-01T00:00:00Z",
        old_balance_mt=old_balance,
        balance_mt=balance,
        available_mt=available,
        usage_delta_mt={},
        old_available_mt=old_available,
    )


def test_token_balance_low_counts_available_tokens_as_the_dashboard_does() -> None:
    # A hold takes available from 600 to 400 while the balance stays at 600: a crossing.
    assert low_balance_crossing(change(600_000, 600_000, 600_000, 400_000)) is not None
    # The balance crosses but available was already below (tokens held): no new crossing.
    assert low_balance_crossing(change(600_000, 300_000, 450_000, 150_000)) is None


# ---- the end of an attempt: decided in the domain, written by the store ------------------


def test_the_breaker_counts_hard_declines_and_pauses_at_the_third() -> None:
    declined = AttemptEnd("declined", counts_as_failure=True, answer=StripeAnswer(requests=1))
    first = decide_end(ACTIVE, declined)
    assert (first.previous_failures, first.consecutive_failures) == (0, 1)
    assert first.paused_reason is None
    third = decide_end(replace(ACTIVE, consecutive_failures=2), declined)
    assert (third.consecutive_failures, third.paused_reason) == (3, "declined_repeatedly")
    assert (third.status, third.stripe_requests) == ("declined", 1)


def test_a_success_resets_the_count_and_an_outage_leaves_it() -> None:
    failing = replace(ACTIVE, consecutive_failures=2)
    success = decide_end(failing, AttemptEnd("succeeded", counts_as_failure=False))
    assert (success.consecutive_failures, success.paused_reason) == (0, None)
    outage = decide_end(failing, AttemptEnd("provider_unavailable", counts_as_failure=False))
    assert (outage.previous_failures, outage.consecutive_failures) == (2, 2)
    assert outage.paused_reason is None


def test_authentication_pauses_at_once_with_its_recovery_link() -> None:
    end = AttemptEnd(
        "authentication_required",
        counts_as_failure=True,
        pause_reason="authentication_required",
        recovery_url="https://checkout.example/c",
        answer=StripeAnswer("pi_1", decline_code="authentication_required"),
    )
    write = decide_end(ACTIVE, end)
    assert (write.paused_reason, write.recovery_url) == (
        "authentication_required",
        "https://checkout.example/c",
    )
    assert (write.payment_intent_id, write.decline_code) == ("pi_1", "authentication_required")
    # A link without a pause is not written: only a pause shows one.
    unpaused = decide_end(ACTIVE, replace(end, pause_reason=None, counts_as_failure=False))
    assert unpaused.recovery_url is None
    expired = decide_end(
        ACTIVE, AttemptEnd("declined", counts_as_failure=True, disable_reason="card_expired")
    )
    assert expired.disabled_reason == "card_expired"


class EndingStore:
    """The TopUpStore calls ending an attempt makes, scripted: the states read in turn and
    what each conditional write finds."""

    def __init__(self, states: list[TopUpState], results: list[str]) -> None:
        self.states, self.results = states, results
        self.writes: list[EndWrite] = []
        self.paid_after_all: list[int] = []

    def get_state(self, customer_id: str) -> TopUpState:
        return self.states.pop(0)

    def finish(self, attempt: Attempt, write: EndWrite) -> str:
        self.writes.append(write)
        return self.results.pop(0)

    def mark_paid_after_all(self, customer_id: str, version: int) -> None:
        self.paid_after_all.append(version)


ATTEMPT = Attempt(
    customer_id="c1", version=7, attempt_id="atu_c1_7", status="admitted", created_at="t"
)


def end_with(store: EndingStore, end: AttemptEnd) -> list[tuple[str, dict[str, object]]]:
    published: list[tuple[str, dict[str, object]]] = []
    outcome = end_attempt(
        ATTEMPT,
        end,
        store=cast(TopUpStore, store),
        publish=lambda kind, detail: published.append((kind, dict(detail))),
        sleep=lambda _s: None,
    )
    assert outcome == end.outcome
    return published


def test_a_state_that_moved_under_the_decision_is_decided_again() -> None:
    # A card was saved between the read and the write (the count went back to 0): the
    # second decision starts from the fresh count, and only it pauses nothing.
    store = EndingStore([replace(ACTIVE, consecutive_failures=2), ACTIVE], ["lost_race", "ended"])
    published = end_with(store, AttemptEnd("declined", counts_as_failure=True))
    assert [w.consecutive_failures for w in store.writes] == [3, 1]
    assert [w.paused_reason for w in store.writes] == ["declined_repeatedly", None]
    assert [kind for kind, _ in published] == ["AutoTopUpFailed"]


def test_a_pause_is_told_once_and_an_attempt_ended_elsewhere_pauses_nothing() -> None:
    third = AttemptEnd("declined", counts_as_failure=True, answer=StripeAnswer(decline_code="x"))
    store = EndingStore([replace(ACTIVE, consecutive_failures=2)], ["ended"])
    published = end_with(store, third)
    assert [kind for kind, _ in published] == ["AutoTopUpFailed", "AutoTopUpPaused"]
    assert published[1][1]["reason"] == "declined_repeatedly"
    elsewhere = EndingStore([replace(ACTIVE, consecutive_failures=2)], ["already_ended"])
    assert [kind for kind, _ in end_with(elsewhere, third)] == ["AutoTopUpFailed"]


def test_an_outcome_without_verdict_looks_for_a_credit_that_came_first() -> None:
    store = EndingStore([ACTIVE], ["ended"])
    end_with(store, AttemptEnd("provider_unavailable", counts_as_failure=False))
    assert store.paid_after_all == [7]
    declined = EndingStore([ACTIVE], ["ended"])
    end_with(declined, AttemptEnd("declined", counts_as_failure=True))
    assert declined.paid_after_all == []


def test_an_end_that_keeps_losing_races_is_left_to_the_stream_retry() -> None:
    store = EndingStore([ACTIVE] * END_DECISIONS, ["lost_race"] * END_DECISIONS)
    with pytest.raises(ServiceUnavailable):
        end_with(store, AttemptEnd("succeeded", counts_as_failure=False))
    assert len(store.writes) == END_DECISIONS


# ---- admission: the store reports, the domain names the refusal or decides again ---------

ENABLED = replace(
    ACTIVE,
    package_id="starter",
    threshold_mt=1_500_000,
    target_mt=2_400_000,
    max_charges_per_day=2,
    max_cents_per_month=10_000,
)


class AdmittingStore:
    """The TopUpStore calls an admission makes, scripted: what each admit write finds."""

    def __init__(self, results: list[AdmissionResult]) -> None:
        self.results = results
        self.admissions: list[Admission] = []
        self.refusals: list[tuple[int, str]] = []

    def get_state(self, customer_id: str, *, consistent: bool = True) -> TopUpState:
        return ENABLED

    def admit(self, state: TopUpState, admission: Admission) -> AdmissionResult:
        self.admissions.append(admission)
        return self.results.pop(0)

    def record_refusal(self, admission: Admission, reason: str) -> None:
        self.refusals.append((admission.settings_version, reason))


def admit_with(store: AdmittingStore) -> str | None:
    trigger = TopUpTrigger(cast(TopUpStore, store), sleep=lambda _s: None)
    # available tokens from 1,500 to 1,499: a crossing of the 1,500 threshold
    return trigger.on_account_change(change(1_500_000, 1_500_000, 1_499_000, 1_499_000))


def test_settings_changed_under_the_admission_are_decided_on_again() -> None:
    # The PUT that raised the target landed between the read and the write: the refusal
    # returns the new settings, and the second write asks for them (version 2, 2 packs).
    newer = replace(ENABLED, settings_version=2, target_mt=4_000_000)
    store = AdmittingStore([AdmissionResult("refused", newer), AdmissionResult("admitted")])
    assert admit_with(store) == "admitted"
    assert [a.settings_version for a in store.admissions] == [1, 2]
    assert [a.packs for a in store.admissions] == [1, 2]
    assert store.refusals == []


def test_new_settings_that_see_no_crossing_admit_nothing() -> None:
    lower = replace(ENABLED, settings_version=2, threshold_mt=1_000_000)
    store = AdmittingStore([AdmissionResult("refused", lower)])
    assert admit_with(store) is None
    assert (len(store.admissions), store.refusals) == (1, [])


def test_a_refusal_is_named_by_the_domain_and_recorded() -> None:
    busy = replace(ENABLED, in_flight="atu_c1_8")
    store = AdmittingStore([AdmissionResult("lost_race"), AdmissionResult("refused", busy)])
    assert admit_with(store) == "in_flight"
    assert store.refusals == [(1, "in_flight")]
    duplicate = AdmittingStore([AdmissionResult("duplicate")])
    assert (admit_with(duplicate), duplicate.refusals) == ("duplicate", [])


def test_an_admission_that_keeps_losing_races_is_left_to_the_stream_retry() -> None:
    store = AdmittingStore([AdmissionResult("lost_race")] * ADMISSION_DECISIONS)
    with pytest.raises(ServiceUnavailable):
        admit_with(store)
    assert len(store.admissions) == ADMISSION_DECISIONS
