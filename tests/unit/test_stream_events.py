"""What an ACCOUNT item's stream images mean: usage deltas, the UTC day, the crossing."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from token_billing.domain.account_changes import (
    LowBalanceCrossing,
    apply_account_change,
    low_balance_crossing,
)
from token_billing.store.stream_images import AccountChange, account_change, usage_delta


def image(
    *, version: int, balance_mt: int, updated_at: str = "2026-11-25T10:00:00.000000Z", **usage: int
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "PK": {"S": "CUST#c1"},
        "SK": {"S": "ACCOUNT"},
        "customer_id": {"S": "c1"},
        "balance_mt": {"N": str(balance_mt)},
        "available_mt": {"N": str(balance_mt)},
        "held_mt": {"N": "0"},
        "version": {"N": str(version)},
        "updated_at": {"S": updated_at},
        "used_mt": {"N": str(sum(usage.values()))},
    }
    for action, mt in usage.items():
        item[f"used_{action}_mt"] = {"N": str(mt)}
    return item


def test_delta_is_new_counters_minus_old_without_zeros() -> None:
    old = image(version=2, balance_mt=10_000, api_call=300, vm_runtime=5_000)
    new = image(version=3, balance_mt=8_700, api_call=600, vm_runtime=5_000, screenshot=1_000)
    assert usage_delta(old, new) == {"api_call": 300, "screenshot": 1_000}


def test_delta_of_an_insert_counts_from_zero_and_ignores_used_mt() -> None:
    assert usage_delta(None, image(version=1, balance_mt=1, api_call=100)) == {"api_call": 100}
    assert usage_delta(None, image(version=1, balance_mt=1)) == {}


def test_change_belongs_to_the_utc_day_of_the_write() -> None:
    late = "2026-11-25T23:30:00-02:00"  # already 2026-11-26 in UTC
    change = account_change(None, image(version=1, balance_mt=1, updated_at=late))
    assert change.day == date(2026, 11, 26)


def test_an_image_without_updated_at_is_refused() -> None:
    broken = image(version=1, balance_mt=1)
    del broken["updated_at"]
    with pytest.raises(ValueError, match="updated_at"):
        account_change(None, broken)


@pytest.mark.parametrize(
    ("old_mt", "new_mt", "crosses"),
    [
        (500_000, 499_999, True),  # from exactly the line to below it
        (900_000, 100, True),
        (600_000, -5_000, True),  # a dispute clawback may go negative
        (600_000, 500_000, False),  # reaching the line is not below it
        (499_999, 400_000, False),  # already below: no new crossing
        (400_000, 600_000, False),  # a top-up
    ],
)
def test_crossing_is_from_at_least_the_line_to_below_it(
    old_mt: int, new_mt: int, crosses: bool
) -> None:
    change = account_change(
        image(version=4, balance_mt=old_mt), image(version=5, balance_mt=new_mt)
    )
    assert (low_balance_crossing(change) is not None) is crosses


def test_an_insert_is_never_a_crossing() -> None:
    assert low_balance_crossing(account_change(None, image(version=1, balance_mt=100))) is None


def test_detail_carries_exact_decimal_strings_and_a_stable_id() -> None:
    change = account_change(
        image(version=6, balance_mt=500_100),
        image(version=7, balance_mt=499_950, updated_at="2026-11-25T10:00:01.5Z"),
    )
    crossing = low_balance_crossing(change)
    assert crossing is not None
    assert crossing.detail() == {
        "id": "c1:7",
        "customer_id": "c1",
        "balance": "499.95",
        "balance_mt": 499_950,
        "available": "499.95",
        "available_mt": 499_950,
        "threshold": "500",
        "threshold_mt": 500_000,
        "version": 7,
        "crossed_at": "2026-11-25T10:00:01.5Z",
    }


class Recorder:
    def __init__(self, *, applies: bool = True, sends: bool = True) -> None:
        self.applies, self.sends = applies, sends
        self.deltas: list[dict[str, Any]] = []
        self.crossings: list[LowBalanceCrossing] = []

    def apply_delta(self, **arguments: Any) -> bool:
        self.deltas.append(arguments)
        return self.applies

    def notify(self, crossing: LowBalanceCrossing) -> bool:
        self.crossings.append(crossing)
        return self.sends


def change_of(old: dict[str, Any], new: dict[str, Any]) -> AccountChange:
    return account_change(old, new)


def test_a_credit_touches_no_aggregate() -> None:
    recorder = Recorder()
    change = change_of(image(version=1, balance_mt=0), image(version=2, balance_mt=9_000))
    outcome = apply_account_change(change, aggregates=recorder, alerts=recorder)
    assert recorder.deltas == []
    assert recorder.crossings == []
    assert not outcome.redelivered


def test_a_redelivered_crossing_is_reported_as_such() -> None:
    recorder = Recorder(applies=False, sends=False)
    change = change_of(
        image(version=1, balance_mt=600_000), image(version=2, balance_mt=1, api_call=599_999)
    )
    outcome = apply_account_change(change, aggregates=recorder, alerts=recorder)
    assert recorder.deltas == [
        {
            "customer_id": "c1",
            "day": date(2026, 11, 25),
            "version": 2,
            "delta_mt": {"api_call": 599_999},
            "updated_at": "2026-11-25T10:00:00.000000Z",
        }
    ]
    assert [crossing.event_id for crossing in recorder.crossings] == ["c1:2"]
    assert (outcome.aggregate_redelivered, outcome.alert_redelivered) == (True, True)
