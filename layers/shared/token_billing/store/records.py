"""The records the ledger reads and writes: accounts, ledger entries, holds (the debit's
whole path; orders are in `order_records`, which the debit never loads)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

ACTIVE = "active"

# What an entry records of its cause, in plain values; only `store.codecs` turns them into
# DynamoDB attribute values (str -> S, int -> N, Mapping[str, int] -> M of N).
CauseValue = str | int | Mapping[str, int]


class UsageCause(NamedTuple):
    """What a usage entry records of its cause: the priced lines (compact records), their
    cost per action, and for a settle or renew its hold and the reply a replay repeats."""

    lines: Sequence[Sequence[object]]
    mt_by_action: Mapping[str, int]
    occurred_at: str | None = None
    hold_id: str | None = None
    reply: str | None = None  # JSON of what the first call answered


class VmDayLimit:
    """A VM's daily limit as one write checks it, in the same transaction as the balance:
    the write adds `spend_mt` to the VM's captured spending of the UTC day (the day of the
    write itself, from the ledger's clock), and `reserve_mt` (a hold, a renew's next hold)
    must still fit after it. Conditions cannot add, so the counter's condition compares its
    spending with `room_mt` = limit - spend - reserve. A plain slotted class: the debit
    function's import path."""

    __slots__ = ("limit_mt", "reserve_mt", "spend_mt", "vm_id")

    def __init__(self, vm_id: str, limit_mt: int, spend_mt: int = 0, reserve_mt: int = 0) -> None:
        self.vm_id = vm_id
        self.limit_mt = limit_mt
        self.spend_mt = spend_mt
        self.reserve_mt = reserve_mt

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VmDayLimit) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        vm_id, limit_mt, spend_mt, reserve_mt = self._fields()
        return f"VmDayLimit({vm_id!r}, {limit_mt}, spend_mt={spend_mt}, reserve_mt={reserve_mt})"

    def _fields(self) -> tuple[str, int, int, int]:
        return (self.vm_id, self.limit_mt, self.spend_mt, self.reserve_mt)

    @property
    def room_mt(self) -> int:
        return self.limit_mt - self.spend_mt - self.reserve_mt


@dataclass(frozen=True, slots=True)
class PostedEntry:
    """The result of a balance change; `replayed` when the key had already been used."""

    txn_id: str
    customer_id: str
    kind: str
    amount_mt: int
    created_at: str
    replayed: bool
    # On a replay: what the first call answered beyond the entry (JSON the domain wrote
    # into the entry's `reply` attribute), so the replay answers exactly that.
    reply: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    customer_id: str
    balance_mt: int
    held_mt: int
    available_mt: int
    version: int
    purchased_mt: int
    bonus_mt: int
    granted_mt: int
    used_mt: int
    clawed_back_mt: int
    plan_tier: str | None
    created_at: str | None
    updated_at: str | None


@dataclass(frozen=True, slots=True)
class Hold:
    hold_id: str
    customer_id: str
    vm_id: str | None
    amount_mt: int  # still reserved
    original_mt: int
    captured_mt: int
    released_mt: int
    status: str  # active | settled | released | expired
    created_at: str
    expires_at: str
    request_hash: str

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


@dataclass(frozen=True, slots=True)
class NewHold:
    hold_id: str
    amount_mt: int
    expires_at: str
    vm_id: str | None
    canonical_request: str


@dataclass(frozen=True, slots=True)
class Capture:
    entry: PostedEntry
    from_hold_mt: int
    released_mt: int
