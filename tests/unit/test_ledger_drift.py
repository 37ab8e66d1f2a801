"""The stream's drift check on one ACCOUNT image pair: a ledger write passes, anything
that moved the item without recording it as its change is named."""

from __future__ import annotations

from dataclasses import replace

import pytest

from token_billing.domain.ledger_drift import ledger_drift
from token_billing.store.stream_images import AccountFigures, RecordedChange, recorded_change

BEFORE = AccountFigures(
    version=4,
    balance_mt=10_000,
    held_mt=2_000,
    available_mt=8_000,
    last_change_id="txn_a",
    last_balance_delta_mt=-500,
    last_held_delta_mt=0,
)


def after(**changes: object) -> RecordedChange:
    return RecordedChange("cust_1", BEFORE, replace(BEFORE, **changes))  # type: ignore[arg-type]


def test_a_debit_a_hold_and_a_first_credit_as_the_ledger_writes_them_pass() -> None:
    debit = after(
        version=5,
        balance_mt=9_000,
        available_mt=7_000,
        last_change_id="txn_b",
        last_balance_delta_mt=-1_000,
    )
    hold = after(
        version=5,
        held_mt=2_500,
        available_mt=7_500,
        last_change_id="hold:h1",
        last_balance_delta_mt=0,
        last_held_delta_mt=500,
    )
    first_credit = RecordedChange(
        "cust_1", None, AccountFigures(1, 7_000, 0, 7_000, "txn_first", 7_000, 0)
    )
    assert ledger_drift(debit) is None
    assert ledger_drift(hold) is None
    assert ledger_drift(first_credit) is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        # ADD balance_mt :x alone: no version, no recorded change
        ({"balance_mt": 11_000, "available_mt": 9_000}, "version went from 4 to 4"),
        # ADD balance_mt, available_mt, version: the recorded change is the old one
        (
            {"version": 5, "balance_mt": 11_000, "available_mt": 9_000},
            "left the previous change 'txn_a' in place",
        ),
        # the same amount as the last write, replayed by hand: caught by the change id
        (
            {"version": 5, "balance_mt": 9_500, "available_mt": 7_500},
            "left the previous change",
        ),
        # a new change id but a balance that moved by something else
        (
            {"version": 5, "balance_mt": 11_000, "available_mt": 9_000, "last_change_id": "x"},
            "balance moved by 1000 mt, the write recorded -500 mt",
        ),
        # held set by hand
        ({"version": 5, "held_mt": 0, "last_change_id": "x"}, "held moved by -2000 mt"),
        # available out of step with balance - held
        (
            {"version": 5, "available_mt": 1, "last_change_id": "x", "last_balance_delta_mt": 0},
            "available is 1 mt, balance - held is 8000 mt",
        ),
        # a version that jumped
        (
            {"version": 7, "last_change_id": "x", "last_balance_delta_mt": 0},
            "version went from 4 to 7",
        ),
    ],
)
def test_every_write_that_bypassed_the_ledger_is_named(
    changes: dict[str, object], reason: str
) -> None:
    drift = ledger_drift(after(**changes))
    assert drift is not None
    assert drift.customer_id == "cust_1"
    assert any(reason in line for line in drift.reasons), drift.reasons


def test_an_item_put_without_the_ledger_records_no_change_and_is_drift() -> None:
    planted = RecordedChange("cust_1", None, AccountFigures(1, 5_000, 0, 5_000, None, None, None))
    drift = ledger_drift(planted)
    assert drift is not None
    assert "recorded no change of its own" in drift.reasons[0]


def test_images_decode_with_and_without_the_recorded_change() -> None:
    old = {
        "customer_id": {"S": "cust_1"},
        "version": {"N": "1"},
        "balance_mt": {"N": "100"},
        "available_mt": {"N": "100"},
    }
    new = {
        **old,
        "version": {"N": "2"},
        "balance_mt": {"N": "40"},
        "available_mt": {"N": "40"},
        "last_change_id": {"S": "txn_x"},
        "last_balance_delta_mt": {"N": "-60"},
        "last_held_delta_mt": {"N": "0"},
    }
    change = recorded_change(old, new)
    assert change.old == AccountFigures(1, 100, 0, 100, None, None, None)
    assert change.new == AccountFigures(2, 40, 0, 40, "txn_x", -60, 0)
    assert ledger_drift(change) is None
