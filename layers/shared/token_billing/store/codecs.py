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
from datetime import UTC, datetime
from typing import Any

from token_billing.store.records import Account, Hold, Order

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


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def request_hash(canonical_request: str) -> str:
    return hashlib.sha256(canonical_request.encode()).hexdigest()


def encode_lines(records: Sequence[Sequence[object]]) -> bytes:
    """Usage lines as compressed compact JSON: a 1,000-line batch stays a few KB."""
    return zlib.compress(json.dumps(records, separators=(",", ":")).encode(), 6)


def decode_lines(blob: bytes) -> list[list[object]]:
    lines: list[list[object]] = json.loads(zlib.decompress(blob))
    return lines


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


def order_from_item(item: Item) -> Order:
    return Order(
        order_id=item["order_id"]["S"],
        customer_id=item["customer_id"]["S"],
        package_id=item["package_id"]["S"],
        catalog_version=item["catalog_version"]["S"],
        price_cents=int(item["price_cents"]["N"]),
        currency=item["currency"]["S"],
        tokens_mt=int(item["tokens_mt"]["N"]),
        bonus_mt=int(item["bonus_mt"]["N"]),
        status=item["status"]["S"],
        created_at=item["created_at"]["S"],
        expires_at=item_int(item, "expires_at") if "expires_at" in item else None,
        session_id=item_str(item, "session_id"),
        checkout_url=item_str(item, "checkout_url"),
        payment_intent_id=item_str(item, "payment_intent_id"),
        paid_at=item_str(item, "paid_at"),
        flag_reason=item_str(item, "flag_reason"),
        refunded_cents=item_int(item, "refunded_cents"),
        disputed_cents=item_int(item, "disputed_cents"),
        clawed_back_mt=item_int(item, "clawed_back_mt"),
        kind=item_str(item, "kind") or "purchase",
        packs=item_int(item, "packs") or 1,
        attempt_version=item_int(item, "attempt_version") if "attempt_version" in item else None,
    )
