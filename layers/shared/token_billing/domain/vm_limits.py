"""Per-VM daily limits (issue 25): the rules, and who may change the limits (the vm-limits
function; the debit function never imports this module).

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
  (`store.vm_limits.LIMITS_REFRESH_S`, a read-through copy per container), never one per
  debit: a lowered limit binds every container within that period. Customers without
  limits send the same one transaction as ever.
- Only the customer may raise or remove a limit; an admin may only lower them (below).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

from token_billing.core.errors import Forbidden, InvalidRequest
from token_billing.store.vm_limits import VmLimitSettings

# Named VMs per customer: the settings item stays under ~80 KB, one read of <= 10 RRU.
MAX_NAMED_VM_LIMITS = 1_000


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
