"""The ACCOUNT item's stream records, decoded: what one write changed.

Images are DynamoDB's low-level attribute maps (`{"N": "12"}`), as both the Lambda event and
boto3 carry them; nothing here knows the shape of a Lambda event around them. The usage a
write added is its new per-action lifetime counters (`used_<action>_mt`) minus the old ones.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import NamedTuple

from token_billing.store.codecs import (
    AttributeValue,
    account_from_item,
    decode_lines,
    item_int,
    item_str,
    usage_by_action,
)
from token_billing.store.table_layout import LAST_BALANCE_DELTA, LAST_CHANGE_ID, LAST_HELD_DELTA

Image = Mapping[str, AttributeValue]


@dataclass(frozen=True, slots=True)
class AccountChange:
    """One write of an ACCOUNT item, as its stream record describes it."""

    customer_id: str
    version: int
    updated_at: str
    old_balance_mt: int | None  # None: the record carries no old image (the item's first write)
    balance_mt: int
    available_mt: int
    usage_delta_mt: Mapping[str, int]  # action -> milli-tokens this write added; no zeros
    old_available_mt: int | None = None  # None with old_balance_mt: no old image
    clawed_back_delta_mt: int = 0  # > 0: a refund or dispute clawback made this write
    held_mt: int = 0  # reserved by active holds (the live balance message shows it)

    @property
    def day(self) -> date:
        """The UTC day the change belongs to: that of the write itself, not of processing,
        so a record delivered after midnight still counts on the day it happened."""
        return parse_timestamp(self.updated_at).astimezone(UTC).date()


def parse_timestamp(value: str) -> datetime:
    """An ISO 8601 timestamp with its zone (the ledger writes `...Z`)."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {value!r} carries no time zone")
    return moment


def usage_delta(old_image: Image | None, new_image: Image) -> dict[str, int]:
    """Milli-tokens per action the write added: new counters minus old, zeros left out.

    A counter missing from the old image counts from zero, which covers an account whose
    first debit (or first debit of a new action) is this write.
    """
    old = usage_by_action(old_image or {})
    new = usage_by_action(new_image)
    delta = {action: new.get(action, 0) - old.get(action, 0) for action in new.keys() | old}
    return {action: mt for action, mt in sorted(delta.items()) if mt != 0}


def account_change(old_image: Image | None, new_image: Image) -> AccountChange:
    """The meaning of one INSERT or MODIFY of an ACCOUNT item."""
    new = account_from_item(dict(new_image))
    if new.updated_at is None:
        raise ValueError(f"account image of {new.customer_id!r} has no updated_at")
    old = account_from_item(dict(old_image)) if old_image else None
    old_balance = old.balance_mt if old else None
    return AccountChange(
        customer_id=new.customer_id,
        version=new.version,
        updated_at=new.updated_at,
        old_balance_mt=old_balance,
        balance_mt=new.balance_mt,
        available_mt=new.available_mt,
        usage_delta_mt=MappingProxyType(usage_delta(old_image, new_image)),
        old_available_mt=old.available_mt if old else None,
        clawed_back_delta_mt=new.clawed_back_mt - (old.clawed_back_mt if old else 0),
        held_mt=new.held_mt,
    )


class UsageEntryInserted(NamedTuple):
    """A usage entry the ledger just wrote (its stream INSERT), as usage by VM counts it:
    milli-tokens per VM of its lines (None: lines that name no VM), on the entry's UTC day."""

    customer_id: str
    txn_id: str
    created_at: str
    mt_by_vm: Mapping[str | None, int]

    @property
    def day(self) -> date:
        return parse_timestamp(self.created_at).astimezone(UTC).date()


def usage_entry_inserted(new_image: Image) -> UsageEntryInserted:
    """The INSERT of a usage entry: its lines decoded (Lambda sends binary as base64)."""
    blob = new_image["lines_z"]["B"]
    raw = base64.b64decode(blob) if isinstance(blob, str) else bytes(blob)
    mt_by_vm: dict[str | None, int] = {}
    for _, _, vm_id, cost_mt in decode_lines(raw):
        owner = vm_id if isinstance(vm_id, str) else None
        mt_by_vm[owner] = mt_by_vm.get(owner, 0) + int(str(cost_mt))
    created_at = item_str(new_image, "created_at")
    if created_at is None:
        raise ValueError("usage entry image has no created_at")
    assert item_int(new_image, "amount_mt") == -sum(mt_by_vm.values()), "lines sum to the entry"
    return UsageEntryInserted(
        customer_id=new_image["customer_id"]["S"],
        txn_id=new_image["txn_id"]["S"],
        created_at=created_at,
        mt_by_vm={vm: mt for vm, mt in mt_by_vm.items() if mt},
    )


class VmLimitReachedMark(NamedTuple):
    """A limited VM's day counter marked refused for the first time (its stream record):
    the VM hit its daily limit that day."""

    customer_id: str
    vm_id: str
    day: str
    limit_mt: int
    spent_mt: int
    reached_at: str


def vm_limit_reached_mark(old_image: Image | None, new_image: Image) -> VmLimitReachedMark | None:
    """The mark this write made, or None when the counter was marked before (a later
    write of a marked counter: more spending after a raise, the event's own bookkeeping)."""
    reached_at = item_str(new_image, "limit_reached_at")
    if reached_at is None or (old_image and "limit_reached_at" in old_image):
        return None
    return VmLimitReachedMark(
        customer_id=new_image["customer_id"]["S"],
        vm_id=new_image["vm_id"]["S"],
        day=new_image["day"]["S"],
        limit_mt=item_int(new_image, "limit_mt"),
        spent_mt=item_int(new_image, "spent_mt"),
        reached_at=reached_at,
    )


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """The figures of one ACCOUNT image that the ledger's own writes keep consistent."""

    version: int
    balance_mt: int
    held_mt: int
    available_mt: int
    last_change_id: str | None  # None: no ledger write recorded its change on this item
    last_balance_delta_mt: int | None
    last_held_delta_mt: int | None


@dataclass(frozen=True, slots=True)
class RecordedChange:
    """An ACCOUNT write's images side by side: what `domain.ledger_drift` checks."""

    customer_id: str
    old: AccountFigures | None  # None: the item's first write (INSERT)
    new: AccountFigures


def _figures(image: Image) -> AccountFigures:
    def optional_int(name: str) -> int | None:
        value = image.get(name)
        return int(value["N"]) if value else None

    change = image.get(LAST_CHANGE_ID)
    return AccountFigures(
        version=item_int(image, "version"),
        balance_mt=item_int(image, "balance_mt"),
        held_mt=item_int(image, "held_mt"),
        available_mt=item_int(image, "available_mt"),
        last_change_id=change["S"] if change else None,
        last_balance_delta_mt=optional_int(LAST_BALANCE_DELTA),
        last_held_delta_mt=optional_int(LAST_HELD_DELTA),
    )


def recorded_change(old_image: Image | None, new_image: Image) -> RecordedChange:
    """The figures of both images of one INSERT or MODIFY of an ACCOUNT item."""
    return RecordedChange(
        customer_id=new_image["customer_id"]["S"],
        old=_figures(old_image) if old_image else None,
        new=_figures(new_image),
    )
