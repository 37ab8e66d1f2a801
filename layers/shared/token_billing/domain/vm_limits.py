"""Per-VM daily limits (issue 25): which limit a write answers to, the debit function's
per-container copy of each customer's limits, and who may change them.

- A VM's **captured spending** in a UTC day is what the ledger billed for it that day: the
  usage lines of its debits, the whole cost of a settle or renew of its hold (usage past the
  hold included), a late settle. Holds reserve tokens but spend nothing: a hold is refused
  only when it does not fit in what the VM may still spend today, and a renew's next hold
  likewise. The counter moves in the same transaction as the balance (`store.ledger`).
- Whose spending: with agent credentials, the credential's VM (every line of its op, with
  or without `vm_id`); without them (trusted hosts), each line's `vm_id`, and a hold's own
  `vm_id` for what is captured from it. A line that names no VM, or a hold placed for none,
  is no VM's spending.
- A debit may bill at most one VM that is under a limit (one counter item per write):
  a batch naming several is refused whole, `invalid_request`, unless it is the replay of a
  batch that was billed before the limits were set (`domain.debits`).
- Which limit a write answers to is decided beside the write it guards: `domain.debits`
  for a debit's lines, `domain.holds` for a hold and what a settle or renew captures.
- The debit function learns a customer's limits with one read per refresh period
  (`LIMITS_REFRESH_S`), never one per debit: a lowered limit binds every container within
  that period. Customers without limits send the same one transaction as ever.

On the debit function's import path: NamedTuples and plain classes, no dataclasses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple, Protocol

from token_billing.core.errors import Forbidden, InvalidRequest, ServiceUnavailable
from token_billing.core.observability import logger
from token_billing.store.vm_limits import VmLimitSettings

# The debit function re-reads a customer's limits at most this often (per container).
LIMITS_REFRESH_S = 60.0
# Customers whose limits one container keeps; the oldest are forgotten first.
CACHED_CUSTOMERS_MAX = 10_000
# Named VMs per customer: the settings item stays under ~80 KB, one read of <= 10 RRU.
MAX_NAMED_VM_LIMITS = 1_000
# A day's limit in milli-tokens: up to a billion tokens, like every amount we accept.
MAX_DAILY_LIMIT_MT = 10**9 * 1_000


class LimitsReader(Protocol):
    def get(self, customer_id: str) -> VmLimitSettings | None: ...


class ReachedMarker(Protocol):
    def mark_limit_reached(
        self, *, customer_id: str, vm_id: str, day: str, limit_mt: int, reached_at: str
    ) -> bool: ...


class VmLimitsCache:
    """One container's copy of customers' limits: read once, then again only after
    `refresh_s`. A refresh that fails keeps the last limits read (a limit is safer stale
    than gone); a first read that fails is a retryable refusal."""

    def __init__(
        self,
        store: LimitsReader,
        *,
        refresh_s: float = LIMITS_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
        max_customers: int = CACHED_CUSTOMERS_MAX,
    ) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._clock = clock
        self._max = max_customers
        self._entries: dict[str, tuple[float, VmLimitSettings | None]] = {}
        self._reached: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()  # the dev server and tests run ops in threads

    def get(self, customer_id: str) -> VmLimitSettings | None:
        """The customer's limits (None: none at all), from this container's copy when it
        is younger than the refresh period."""
        now = self._clock()
        cached = self._entries.get(customer_id)
        if cached is not None and now - cached[0] < self._refresh_s:
            return cached[1]
        try:
            settings = self._store.get(customer_id)
        except ServiceUnavailable:
            if cached is None:
                raise
            logger.warning(
                "VM limits refresh failed; keeping the last read",
                extra={"customer_id": customer_id},
            )
            settings = cached[1]
        if settings is not None and not settings.limits_anything:
            settings = None
        with self._lock:
            self._entries.pop(customer_id, None)
            if len(self._entries) >= self._max:
                del self._entries[next(iter(self._entries))]
            self._entries[customer_id] = (now, settings)
        return settings

    def note_reached(
        self, marker: ReachedMarker, *, customer_id: str, refusal: Mapping[str, object], at: str
    ) -> bool:
        """Mark the VM's day refused, once per container per VM and day (the store's
        condition makes it once across containers); True when this call marked it."""
        vm_id, day, limit_mt = refusal["vm_id"], refusal["day"], refusal["limit_mt"]
        assert isinstance(vm_id, str) and isinstance(day, str) and isinstance(limit_mt, int)
        key = (customer_id, vm_id, day)
        with self._lock:
            if key in self._reached:
                return False
            if len(self._reached) >= self._max:
                self._reached.clear()
            self._reached.add(key)
        return marker.mark_limit_reached(
            customer_id=customer_id, vm_id=vm_id, day=day, limit_mt=limit_mt, reached_at=at
        )


# ---- changing the limits (the vm-limits function) ---------------------------------------


class LimitsUpdate(NamedTuple):
    """What a PUT asks for, in milli-tokens (checked by the edge's model)."""

    default_daily_limit_mt: int | None
    limits_mt: Mapping[str, int | None]


class SettingsStore(Protocol):
    def get(self, customer_id: str, *, consistent: bool = False) -> VmLimitSettings | None: ...

    def put(
        self, customer_id: str, settings: VmLimitSettings, *, expected_version: int
    ) -> VmLimitSettings: ...


def _looser(new_mt: int | None, old_mt: int | None) -> bool:
    """Whether `new_mt` lets a VM spend more than `old_mt` (None: no limit at all)."""
    if new_mt is None:
        return old_mt is not None
    return old_mt is not None and new_mt > old_mt


def raises_any_limit(old: VmLimitSettings, new: VmLimitSettings) -> list[str]:
    """Which VMs (and "default", every VM not named) the change would let spend more a day:
    a missing limit counts as no limit at all."""
    raised = []
    if _looser(new.default_daily_limit_mt, old.default_daily_limit_mt):
        raised.append("default")
    for vm_id in sorted(old.limits_mt.keys() | new.limits_mt.keys()):
        if _looser(new.limit_for(vm_id), old.limit_for(vm_id)):
            raised.append(vm_id)
    return raised


def update_limits(
    store: SettingsStore,
    customer_id: str,
    update: LimitsUpdate,
    *,
    caller: str,
    may_raise: bool,
    now: str,
) -> VmLimitSettings:
    """Replace the customer's limits. Only the customer may raise one; anyone else allowed
    on the account (an admin) may only lower (support's safe direction): Forbidden, nothing
    written. A change racing another is a Conflict, nothing written."""
    if len(update.limits_mt) > MAX_NAMED_VM_LIMITS:
        raise InvalidRequest(f"limits names at most {MAX_NAMED_VM_LIMITS} VMs")
    current = store.get(customer_id, consistent=True)
    old = current or VmLimitSettings(None, {})
    new = VmLimitSettings(
        update.default_daily_limit_mt,
        dict(update.limits_mt),
        updated_at=now,
        updated_by=caller,
    )
    raised = raises_any_limit(old, new)
    if raised and not may_raise:
        raise Forbidden(
            "only the customer may raise or remove a VM limit; an admin may lower them "
            f"(this change raises: {', '.join(raised[:5])}); nothing was changed"
        )
    return store.put(customer_id, new, expected_version=old.version)
