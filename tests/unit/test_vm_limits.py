"""Per-VM daily limits (issue 25) without DynamoDB: which limit a write answers to, the
debit function's per-container copy of the limits, and who may change them."""

from __future__ import annotations

from datetime import date

import pytest

from token_billing.core.errors import Forbidden, InvalidRequest, ServiceUnavailable
from token_billing.domain.debits import MultipleLimitedVms, spend_by_vm, usage_limit
from token_billing.domain.holds import capture_limit, hold_limit
from token_billing.domain.vm_limits import (
    MAX_NAMED_VM_LIMITS,
    LimitsUpdate,
    raises_any_limit,
    update_limits,
)
from token_billing.domain.vm_usage import usage_by_vm
from token_billing.store.records import VmDayLimit
from token_billing.store.vm_limits import DayCounter, VmLimitsCache, VmLimitSettings
from token_billing.store.vm_usage import months_between

SETTINGS = VmLimitSettings(500, {"vm-7": 100, "vm-free": None})


def test_a_vm_answers_to_its_own_limit_else_the_default_and_an_exempt_one_to_none() -> None:
    assert SETTINGS.limit_for("vm-7") == 100
    assert SETTINGS.limit_for("vm-other") == 500
    assert SETTINGS.limit_for("vm-free") is None
    assert VmLimitSettings(None, {"vm-7": 100}).limit_for("vm-other") is None
    assert not VmLimitSettings(None, {"vm-free": None}).limits_anything


def test_the_credential_vm_takes_every_line_and_without_one_each_line_its_own() -> None:
    lines = [("vm-7", 10), (None, 5), ("vm-7", 1)]
    assert spend_by_vm(lines, "vm-7") == {"vm-7": 16}
    assert spend_by_vm(lines, None) == {"vm-7": 11, None: 5}


def test_a_write_answers_to_the_one_limited_vm_it_bills() -> None:
    assert usage_limit(SETTINGS, {"vm-7": 10, None: 3, "vm-free": 9}) == VmDayLimit(
        "vm-7", 100, spend_mt=10
    )
    assert usage_limit(SETTINGS, {"vm-free": 9, None: 3}) is None
    with pytest.raises(MultipleLimitedVms, match="one batch per VM") as refused:
        usage_limit(SETTINGS, {"vm-7": 10, "vm-8": 1})
    assert isinstance(refused.value, InvalidRequest)


def test_holds_and_captures_check_room_for_what_they_reserve_and_spend() -> None:
    assert hold_limit(SETTINGS, "vm-7", 30) == VmDayLimit("vm-7", 100, reserve_mt=30)
    assert hold_limit(SETTINGS, None, 30) is None  # a hold placed for no VM
    renew = capture_limit(SETTINGS, "vm-7", 40, next_hold_mt=30)
    assert renew == VmDayLimit("vm-7", 100, spend_mt=40, reserve_mt=30)
    assert renew is not None
    assert renew.room_mt == 30  # the counter may stand at 30 for both to fit
    assert capture_limit(SETTINGS, "vm-free", 40) is None


class FakeStore:
    def __init__(self, settings: VmLimitSettings | None) -> None:
        self.settings = settings
        self.reads = 0
        self.fail = False
        self.written: list[tuple[VmLimitSettings, int]] = []

    def get(self, customer_id: str, *, consistent: bool = False) -> VmLimitSettings | None:
        self.reads += 1
        if self.fail:
            raise ServiceUnavailable("throttled")
        return self.settings

    def put(
        self, customer_id: str, settings: VmLimitSettings, *, expected_version: int
    ) -> VmLimitSettings:
        self.written.append((settings, expected_version))
        return settings.at_version(expected_version + 1)


def test_the_cache_reads_a_customer_once_per_refresh_period() -> None:
    store = FakeStore(None)
    now = [100.0]
    cache = VmLimitsCache(store, refresh_s=60, clock=lambda: now[0])
    assert [cache.get("c1") for _ in range(50)] == [None] * 50
    assert store.reads == 1
    now[0] += 59.9
    cache.get("c1")
    assert store.reads == 1
    now[0] += 0.2
    store.settings = SETTINGS
    assert cache.get("c1") == SETTINGS
    assert store.reads == 2
    cache.get("c2")
    assert store.reads == 3  # per customer


def test_a_failed_refresh_keeps_the_last_limits_and_a_failed_first_read_refuses() -> None:
    store = FakeStore(SETTINGS)
    now = [0.0]
    cache = VmLimitsCache(store, refresh_s=60, clock=lambda: now[0])
    assert cache.get("c1") == SETTINGS
    store.fail = True
    now[0] += 61
    assert cache.get("c1") == SETTINGS  # safer stale than gone
    with pytest.raises(ServiceUnavailable):
        cache.get("c2")


def test_the_cache_forgets_the_oldest_customer_past_its_bound() -> None:
    store = FakeStore(None)
    cache = VmLimitsCache(store, max_customers=2, clock=lambda: 0.0)
    for customer in ("a", "b", "c", "a"):
        cache.get(customer)
    assert store.reads == 4  # "a" was forgotten when "c" came


class Marks:
    def __init__(self) -> None:
        self.calls = 0

    def mark_limit_reached(self, **_: object) -> bool:
        self.calls += 1
        return True


def test_a_vm_day_is_marked_once_per_container() -> None:
    cache = VmLimitsCache(FakeStore(None))
    marks = Marks()
    refusal = {"vm_id": "vm-7", "day": "2026-12-01", "limit_mt": 100}
    assert cache.note_reached(marks, customer_id="c1", refusal=refusal, at="t")
    assert not cache.note_reached(marks, customer_id="c1", refusal=refusal, at="t")
    next_day = refusal | {"day": "2026-12-02"}
    assert cache.note_reached(marks, customer_id="c1", refusal=next_day, at="t")
    assert marks.calls == 2


@pytest.mark.parametrize(
    ("new", "raised"),
    [
        (VmLimitSettings(400, {"vm-7": 100, "vm-free": None}), []),
        (VmLimitSettings(500, {"vm-7": 50, "vm-free": 10, "vm-9": 1}), []),
        (VmLimitSettings(501, {"vm-7": 100, "vm-free": None}), ["default"]),
        (VmLimitSettings(500, {"vm-free": None}), ["vm-7"]),  # back to the default's 500
        (VmLimitSettings(None, {"vm-7": 100, "vm-free": None}), ["default"]),
        (VmLimitSettings(500, {"vm-7": None, "vm-free": None}), ["vm-7"]),
    ],
)
def test_what_a_change_raises(new: VmLimitSettings, raised: list[str]) -> None:
    assert raises_any_limit(SETTINGS, new) == raised


def test_an_admin_may_lower_but_not_raise_and_the_customer_may_do_both() -> None:
    store = FakeStore(SETTINGS.at_version(3))
    lower = LimitsUpdate(400, {"vm-7": 100, "vm-free": None})
    written = update_limits(store, "c1", lower, caller="admin", may_raise=False, now="t")
    assert (written.version, store.written[-1][1]) == (4, 3)  # under the version read
    raise_ = LimitsUpdate(600, {})
    with pytest.raises(Forbidden, match="nothing was changed"):
        update_limits(store, "c1", raise_, caller="admin", may_raise=False, now="t")
    assert len(store.written) == 1
    update_limits(store, "c1", raise_, caller="owner", may_raise=True, now="t")
    assert store.written[-1][0].updated_by == "owner"
    too_many = LimitsUpdate(None, {f"vm-{n}": 1 for n in range(MAX_NAMED_VM_LIMITS + 1)})
    with pytest.raises(InvalidRequest):
        update_limits(store, "c1", too_many, caller="owner", may_raise=True, now="t")


def test_usage_by_vm_ranks_vms_and_marks_one_at_its_limit() -> None:
    d1, d2 = date(2026, 12, 1), date(2026, 12, 2)
    usage = {"vm-a": {d1: 50, d2: 100}, "vm-b": {d1: 200}, None: {d2: 7}, "vm-c": {d2: 1}}
    report = usage_by_vm(
        usage,
        first_day=d1,
        last_day=d2,
        top=2,
        limits=VmLimitSettings(None, {"vm-a": 100}),
        today={"vm-a": DayCounter(100, False)},
    )
    assert (report.total_mt, report.vm_count) == (358, 4)
    assert [(vm.vm_id, vm.used_mt) for vm in report.top] == [("vm-b", 200), ("vm-a", 150)]
    assert [vm.at_limit for vm in report.top] == [False, True]
    assert report.days[0].by_vm_mt == {"vm-b": 200, "vm-a": 50}
    assert (report.days[1].by_vm_mt, report.days[1].other_mt) == ({"vm-a": 100}, 8)


def test_a_window_touches_every_month_between_its_ends() -> None:
    assert months_between(date(2026, 11, 15), date(2027, 1, 2)) == ["2026-11", "2026-12", "2027-01"]
