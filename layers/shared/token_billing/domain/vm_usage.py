"""Usage by VM (issue 25): "which VM spent my tokens?".

Counted off the debit path: the ledger stream sees each usage entry inserted and adds its
lines' cost per VM to that VM's day (`store.vm_usage`, exactly once per entry). Read back as
tokens per VM per day over a window and the top VMs of it, each with its daily limit and
whether it is at that limit today.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import NamedTuple, Protocol

from token_billing.store.stream_images import UsageEntryInserted
from token_billing.store.vm_limits import DayCounter, VmLimitSettings

MAX_DAYS = 90
MAX_TOP_VMS = 50


class UsageByVmStore(Protocol):
    def apply_entry(
        self,
        *,
        customer_id: str,
        txn_id: str,
        day: date,
        mt_by_vm: Mapping[str | None, int],
        updated_at: str,
    ) -> int: ...

    def usage(
        self, customer_id: str, first_day: date, last_day: date
    ) -> dict[str | None, dict[date, int]]: ...


def apply_usage_entry(entry: UsageEntryInserted, store: UsageByVmStore, *, now: str) -> bool:
    """Count one usage entry by VM on its own UTC day; False when it was counted before (a
    redelivered record) or bills nothing."""
    if not entry.mt_by_vm:
        return False
    applied = store.apply_entry(
        customer_id=entry.customer_id,
        txn_id=entry.txn_id,
        day=entry.day,
        mt_by_vm=entry.mt_by_vm,
        updated_at=now,
    )
    return applied > 0


class VmPeriodUsage(NamedTuple):
    """One VM over the window, with its limit and how it stands today."""

    vm_id: str | None  # None: lines that named no VM
    used_mt: int
    daily_limit_mt: int | None
    used_today_mt: int
    at_limit: bool


class DayUsage(NamedTuple):
    day: date
    total_mt: int
    by_vm_mt: Mapping[str | None, int]  # the top VMs' usage that day (absent: none)
    other_mt: int  # every other VM's


class UsageByVm(NamedTuple):
    first_day: date
    last_day: date
    total_mt: int
    vm_count: int
    top: list[VmPeriodUsage]
    days: list[DayUsage]


def usage_by_vm(
    usage: Mapping[str | None, Mapping[date, int]],
    *,
    first_day: date,
    last_day: date,
    top: int,
    limits: VmLimitSettings | None,
    today: Mapping[str, DayCounter],
) -> UsageByVm:
    """The window's usage per VM per day, its `top` VMs by tokens (ties by VM id), every
    other VM summed per day; a VM is at its limit when today's counter reached it or a
    write was refused against it today."""
    totals = {vm_id: sum(days.values()) for vm_id, days in usage.items()}
    ranked = sorted(totals, key=lambda vm_id: (-totals[vm_id], vm_id or ""))[:top]
    top_vms = []
    for vm_id in ranked:
        limit_mt = limits.limit_for(vm_id) if limits is not None and vm_id else None
        counter = today.get(vm_id or "")
        used_today_mt = counter.spent_mt if counter is not None else usage[vm_id].get(last_day, 0)
        at_limit = limit_mt is not None and (
            used_today_mt >= limit_mt or (counter is not None and counter.limit_reached)
        )
        top_vms.append(VmPeriodUsage(vm_id, totals[vm_id], limit_mt, used_today_mt, at_limit))
    days = []
    day = first_day
    while day <= last_day:
        total = sum(vm_days.get(day, 0) for vm_days in usage.values())
        by_vm = {vm_id: usage[vm_id][day] for vm_id in ranked if usage[vm_id].get(day)}
        days.append(DayUsage(day, total, by_vm, total - sum(by_vm.values())))
        day += timedelta(days=1)
    return UsageByVm(first_day, last_day, sum(totals.values()), len(totals), top_vms, days)
