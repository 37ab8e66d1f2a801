"""Item codecs: DynamoDB's low-level attribute maps to and from our records.

Both boto3 and the stream's images carry items as `{"N": "12"}` maps; every store module
reads and writes them through these helpers, so a record has one decoding.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from token_billing.store.records import Account, CauseValue, Hold, UsageCause
from token_billing.store.table_layout import customer_pk, vm_day_sk

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

USAGE_COUNTER = re.compile(r"^used_[a-z][a-z_]{0,30}_mt$")


def usage_counter(action: str) -> str:
    """The account attribute counting an action's lifetime usage: used_<action>_mt."""
    name = f"used_{action}_mt"
    assert USAGE_COUNTER.match(name), action
    return name


def usage_by_action(item: Mapping[str, AttributeValue]) -> dict[str, int]:
    """The per-action lifetime counters of an account item (or stream image)."""
    found = {}
    for name, value in item.items():
        if name != "used_mt" and USAGE_COUNTER.match(name):
            found[name[len("used_") : -len("_mt")]] = int(value["N"])
    return found


def request_hash(canonical_request: str) -> str:
    return hashlib.sha256(canonical_request.encode()).hexdigest()


def encode_lines(records: Sequence[Sequence[object]]) -> bytes:
    """Usage lines as compressed compact JSON: a 1,000-line batch stays a few KB."""
    return zlib.compress(json.dumps(records, separators=(",", ":")).encode(), 6)


def decode_lines(blob: bytes) -> list[list[object]]:
    lines: list[list[object]] = json.loads(zlib.decompress(blob))
    return lines


def cause_attributes(cause: Mapping[str, CauseValue]) -> Item:
    """Plain cause values as item attributes: str -> S, int -> N, a map of ints -> M."""
    item: Item = {}
    for name, value in cause.items():
        if isinstance(value, str):
            item[name] = attr_s(value)
        elif isinstance(value, bool):
            raise TypeError(f"{name}: a cause holds no booleans")
        elif isinstance(value, int):
            item[name] = attr_n(value)
        else:
            item[name] = {"M": {key: attr_n(mt) for key, mt in value.items()}}
    return item


def usage_cause_attributes(cause: UsageCause) -> Item:
    """A usage entry's cause: its lines compressed, their count and cost per action, and
    (when given) when they occurred, the hold they settle and the reply a replay repeats."""
    item: Item = {
        "line_count": attr_n(len(cause.lines)),
        "lines_z": {"B": encode_lines(cause.lines)},
        "usage_mt_by_action": {"M": {a: attr_n(mt) for a, mt in cause.mt_by_action.items()}},
    }
    for name in ("occurred_at", "hold_id", "reply"):
        value = getattr(cause, name)
        if value is not None:
            item[name] = attr_s(value)
    return item


def attr_s(value: str) -> AttributeValue:
    return {"S": value}


def attr_n(value: int) -> AttributeValue:
    return {"N": str(value)}


def item_int(item: Mapping[str, AttributeValue], name: str) -> int:
    """A number attribute as int; 0 when the item does not carry it."""
    value = item.get(name)
    return int(value["N"]) if value else 0


def item_str(item: Mapping[str, AttributeValue], name: str) -> str | None:
    """A string attribute, or None when the item does not carry it."""
    value = item.get(name)
    return value["S"] if value else None


def account_from_item(item: Item) -> Account:
    return Account(
        customer_id=item["customer_id"]["S"],
        balance_mt=item_int(item, "balance_mt"),
        held_mt=item_int(item, "held_mt"),
        available_mt=item_int(item, "available_mt"),
        version=item_int(item, "version"),
        purchased_mt=item_int(item, "purchased_mt"),
        bonus_mt=item_int(item, "bonus_mt"),
        granted_mt=item_int(item, "granted_mt"),
        used_mt=item_int(item, "used_mt"),
        clawed_back_mt=item_int(item, "clawed_back_mt"),
        plan_tier=item_str(item, "plan_tier"),
        created_at=item_str(item, "created_at"),
        updated_at=item_str(item, "updated_at"),
    )


def hold_from_item(item: Item) -> Hold:
    return Hold(
        hold_id=item["hold_id"]["S"],
        customer_id=item["customer_id"]["S"],
        vm_id=item_str(item, "vm_id"),
        amount_mt=item_int(item, "amount_mt"),
        original_mt=item_int(item, "original_mt"),
        captured_mt=item_int(item, "captured_mt"),
        released_mt=item_int(item, "released_mt"),
        status=item["hold_status"]["S"],
        created_at=item["created_at"]["S"],
        expires_at=item["expires_at"]["S"],
        request_hash=item["request_hash"]["S"],
    )


def vm_day_key(customer_id: str, day: str, vm_id: str) -> Item:
    """The key of a VM's spending counter for one UTC day."""
    return {"PK": attr_s(customer_pk(customer_id)), "SK": attr_s(vm_day_sk(day, vm_id))}
