"""Reconciliation: check every customer's account against their ledger, holds and orders.
Read-only: it reports every difference and changes nothing.

Checks, per customer:
- balance_mt = sum of ledger entries (invariant 1);
- held_mt = sum of active holds, available_mt = balance_mt - held_mt (invariant 2);
- every paid order has exactly one purchase entry of its tokens + bonus, and every purchase
  entry belongs to an order that was paid.

One parallel Scan of the table (a batch job: ~0.5 RCU per 4 KB of table, eventually
consistent; run it when the table is quiet or accept in-flight noise, which a second run
clears).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from token_billing.store.codecs import Item, item_int
from token_billing.store.orders import ORDER_PREFIX
from token_billing.store.records import ACTIVE
from token_billing.store.table_layout import ACCOUNT_SK, CUSTOMER_PREFIX, ENTRY_PREFIX, HOLD_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

SCAN_SEGMENTS = 4
PROJECTION = (
    "PK, SK, balance_mt, held_mt, available_mt, amount_mt, kind, order_id, "
    "hold_status, #status, tokens_mt, bonus_mt, paid_at"
)
# Orders that were paid at some point keep paid_at; these statuses follow a payment.
PAID_STATUSES = frozenset({"paid", "partially_refunded", "refunded", "disputed"})


@dataclass(frozen=True, slots=True)
class Finding:
    customer_id: str
    check: str
    expected: str
    actual: str
    detail: str = ""

    def line(self) -> str:
        suffix = f" ({self.detail})" if self.detail else ""
        found = f"expected {self.expected}, found {self.actual}"
        return f"{self.customer_id}: {self.check}: {found}{suffix}"


@dataclass
class _Customer:
    account: Item | None = None
    entries_sum_mt: int = 0
    active_holds_mt: int = 0
    purchases: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    paid_orders: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    customers: int
    items: int
    findings: list[Finding]

    @property
    def clean(self) -> bool:
        return not self.findings


def scan_items(client: DynamoDBClient, table: str) -> Iterator[Item]:
    """Every customer item of the table, from a parallel Scan (segments side by side)."""

    def segment(index: int) -> list[Item]:
        kwargs: dict[str, Any] = {
            "TableName": table,
            "ProjectionExpression": PROJECTION,
            "ExpressionAttributeNames": {"#status": "status"},
            "FilterExpression": "begins_with(PK, :customer)",
            "ExpressionAttributeValues": {":customer": {"S": CUSTOMER_PREFIX}},
            "Segment": index,
            "TotalSegments": SCAN_SEGMENTS,
        }
        found: list[Item] = []
        while True:
            response = client.scan(**kwargs)
            found.extend(response.get("Items", []))  # type: ignore[arg-type]
            if "LastEvaluatedKey" not in response:
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    with ThreadPoolExecutor(SCAN_SEGMENTS) as pool:
        for items in pool.map(segment, range(SCAN_SEGMENTS)):
            yield from items


def reconcile(client: DynamoDBClient, table: str) -> Report:
    customers: dict[str, _Customer] = defaultdict(_Customer)
    count = 0
    for item in scan_items(client, table):
        count += 1
        customer = customers[item["PK"]["S"].removeprefix(CUSTOMER_PREFIX)]
        sort_key = item["SK"]["S"]
        if sort_key == ACCOUNT_SK:
            customer.account = item
        elif sort_key.startswith(HOLD_PREFIX):
            if item.get("hold_status", {}).get("S") == ACTIVE:
                customer.active_holds_mt += item_int(item, "amount_mt")
        elif sort_key.startswith(ENTRY_PREFIX):
            customer.entries_sum_mt += item_int(item, "amount_mt")
            if item.get("kind", {}).get("S") == "purchase":
                order_id = item.get("order_id", {}).get("S", "?")
                customer.purchases[order_id].append(item_int(item, "amount_mt"))
        elif sort_key.startswith(ORDER_PREFIX):
            status = item.get("status", {}).get("S")
            if status in PAID_STATUSES or "paid_at" in item:
                order_id = sort_key.removeprefix(ORDER_PREFIX)
                customer.paid_orders[order_id] = item_int(item, "tokens_mt") + item_int(
                    item, "bonus_mt"
                )
    findings = [
        finding
        for customer_id, customer in sorted(customers.items())
        for finding in _check(customer_id, customer)
    ]
    return Report(customers=len(customers), items=count, findings=findings)


def _check(customer_id: str, c: _Customer) -> Iterator[Finding]:
    if c.account is None:
        if c.entries_sum_mt or c.active_holds_mt:
            yield Finding(
                customer_id,
                "account exists",
                "an ACCOUNT item",
                "none",
                "entries or holds without one",
            )
    else:
        balance, held, available = (
            item_int(c.account, name) for name in ("balance_mt", "held_mt", "available_mt")
        )
        if balance != c.entries_sum_mt:
            yield Finding(
                customer_id, "balance = sum of entries", str(c.entries_sum_mt), str(balance)
            )
        if held != c.active_holds_mt:
            yield Finding(
                customer_id, "held = sum of active holds", str(c.active_holds_mt), str(held)
            )
        if available != balance - held:
            yield Finding(
                customer_id, "available = balance - held", str(balance - held), str(available)
            )
    for order_id, total_mt in sorted(c.paid_orders.items()):
        credits = c.purchases.get(order_id, [])
        if credits != [total_mt]:
            yield Finding(
                customer_id,
                "paid order credited once",
                f"one credit of {total_mt} mt",
                f"{len(credits)} credit(s) {credits}",
                f"order {order_id}",
            )
    for order_id, credits in sorted(c.purchases.items()):
        if order_id not in c.paid_orders:
            yield Finding(
                customer_id,
                "credit has a paid order",
                f"a paid order {order_id}",
                "none",
                f"{len(credits)} purchase credit(s) totalling {sum(credits)} mt",
            )
