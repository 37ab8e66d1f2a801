"""One parallel Scan of the table, tallied per customer: what reconciliation compares.

A batch job: ~0.5 RCU per 4 KB of table, eventually consistent. Items are read with a
projection of the attributes the tallies need, and no item is written.
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


@dataclass(frozen=True, slots=True)
class AccountTally:
    balance_mt: int
    held_mt: int
    available_mt: int


@dataclass(frozen=True, slots=True)
class OrderTally:
    status: str | None
    ever_paid: bool  # paid_at stays once an order was paid
    total_mt: int


@dataclass
class CustomerTally:
    account: AccountTally | None = None
    entries_sum_mt: int = 0
    active_holds_mt: int = 0
    purchases: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    orders: dict[str, OrderTally] = field(default_factory=dict)


def parallel_scan(client: DynamoDBClient, request: dict[str, Any]) -> Iterator[Item]:
    """Every item a Scan `request` returns, its SCAN_SEGMENTS segments read side by side,
    each to its last page."""

    def segment(index: int) -> list[Item]:
        kwargs: dict[str, Any] = {**request, "Segment": index, "TotalSegments": SCAN_SEGMENTS}
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


def scan_items(client: DynamoDBClient, table: str) -> Iterator[Item]:
    """Every customer item of the table, from a parallel Scan (segments side by side)."""
    return parallel_scan(
        client,
        {
            "TableName": table,
            "ProjectionExpression": PROJECTION,
            "ExpressionAttributeNames": {"#status": "status"},
            "FilterExpression": "begins_with(PK, :customer)",
            "ExpressionAttributeValues": {":customer": {"S": CUSTOMER_PREFIX}},
        },
    )


def tally_customers(client: DynamoDBClient, table: str) -> tuple[dict[str, CustomerTally], int]:
    """Per customer: the account's figures, the sum of entries and active holds, purchase
    credits by order and every order; with the number of items read."""
    customers: dict[str, CustomerTally] = defaultdict(CustomerTally)
    count = 0
    for item in scan_items(client, table):
        count += 1
        customer = customers[item["PK"]["S"].removeprefix(CUSTOMER_PREFIX)]
        sort_key = item["SK"]["S"]
        if sort_key == ACCOUNT_SK:
            customer.account = AccountTally(
                *(item_int(item, name) for name in ("balance_mt", "held_mt", "available_mt"))
            )
        elif sort_key.startswith(HOLD_PREFIX):
            if item.get("hold_status", {}).get("S") == ACTIVE:
                customer.active_holds_mt += item_int(item, "amount_mt")
        elif sort_key.startswith(ENTRY_PREFIX):
            customer.entries_sum_mt += item_int(item, "amount_mt")
            if item.get("kind", {}).get("S") == "purchase":
                order_id = item.get("order_id", {}).get("S", "?")
                customer.purchases[order_id].append(item_int(item, "amount_mt"))
        elif sort_key.startswith(ORDER_PREFIX):
            customer.orders[sort_key.removeprefix(ORDER_PREFIX)] = OrderTally(
                status=item.get("status", {}).get("S"),
                ever_paid="paid_at" in item,
                total_mt=item_int(item, "tokens_mt") + item_int(item, "bonus_mt"),
            )
    return dict(customers), count
