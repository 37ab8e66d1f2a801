"""Read side of the ledger: a customer's account with its active holds, and their history.

The account and its holds share the SK prefix "ACCOUNT" (`ACCOUNT`, `ACCOUNT#HOLD#<id>`),
so one Query returns both; history pages come from the sparse `ledger-by-time` index.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from token_billing.core.errors import InvalidRequest
from token_billing.store.codecs import (
    AttributeValue,
    Item,
    account_from_item,
    hold_from_item,
    item_str,
)
from token_billing.store.records import Account, Hold
from token_billing.store.table_layout import (
    ACCOUNT_SK,
    HOLD_PREFIX,
    LEDGER_BY_TIME_INDEX,
    customer_pk,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ENTRY_KINDS = ("purchase", "grant", "usage", "clawback")
MAX_PAGE_SIZE = 100
# An export page stays far below Lambda's 6 MB response: a CSV row is ~200 bytes.
MAX_EXPORT_PAGE_SIZE = 5_000
# A filtered page may need several index reads to fill; bounded so one request stays cheap.
MAX_QUERIES_PER_PAGE = 5


@dataclass(frozen=True, slots=True)
class Transaction:
    txn_id: str
    kind: str
    amount_mt: int
    created_at: str
    occurred_at: str | None
    usage_mt_by_action: dict[str, int]
    order_id: str | None
    package_id: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Page[T]:
    data: list[T]
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def transaction_from_item(item: Item) -> Transaction:
    by_action = item.get("usage_mt_by_action", {}).get("M", {})
    return Transaction(
        txn_id=item["txn_id"]["S"],
        kind=item["kind"]["S"],
        amount_mt=int(item["amount_mt"]["N"]),
        created_at=item["created_at"]["S"],
        occurred_at=item_str(item, "occurred_at"),
        usage_mt_by_action={action: int(value["N"]) for action, value in by_action.items()},
        order_id=item_str(item, "order_id"),
        package_id=item_str(item, "package_id"),
        reason=item_str(item, "reason"),
    )


def encode_cursor(key: dict[str, AttributeValue]) -> str:
    flat = {name: value["S"] for name, value in key.items()}
    return base64.urlsafe_b64encode(json.dumps(flat, sort_keys=True).encode()).decode()


def decode_cursor(cursor: str, customer_id: str, names: Sequence[str]) -> dict[str, AttributeValue]:
    """The start key a cursor names, if it is one of ours for this customer."""
    try:
        flat = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("cursor is not valid: pass next_cursor from a previous page") from None
    if (
        not isinstance(flat, dict)
        or sorted(flat) != sorted(names)
        or flat.get("PK") != customer_pk(customer_id)
        or not all(isinstance(value, str) for value in flat.values())
    ):
        raise InvalidRequest("cursor is not valid: pass next_cursor from a previous page")
    return {name: {"S": value} for name, value in flat.items()}


class History:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def account_with_holds(self, customer_id: str) -> tuple[Account | None, list[Hold]]:
        """One strongly consistent Query: the account item and its active holds."""
        items: list[Item] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :account)",
            "FilterExpression": "attribute_not_exists(hold_status) OR hold_status = :active",
            "ExpressionAttributeValues": {
                ":pk": {"S": customer_pk(customer_id)},
                ":account": {"S": ACCOUNT_SK},
                ":active": {"S": "active"},
            },
            "ConsistentRead": True,
        }
        for _ in range(MAX_QUERIES_PER_PAGE):
            response = self._client.query(**kwargs)
            items.extend(response.get("Items", []))  # type: ignore[arg-type]
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        account = next((account_from_item(i) for i in items if i["SK"]["S"] == ACCOUNT_SK), None)
        holds = [hold_from_item(i) for i in items if i["SK"]["S"].startswith(HOLD_PREFIX)]
        return account, sorted(holds, key=lambda hold: hold.expires_at)

    def transactions(
        self,
        customer_id: str,
        *,
        limit: int,
        cursor: str | None = None,
        kinds: Sequence[str] = (),
        since: str | None = None,
        until: str | None = None,
        oldest_first: bool = False,
    ) -> Page[Transaction]:
        """A page of ledger entries, newest first (or oldest first), optionally of some
        kinds and times."""
        assert 1 <= limit <= MAX_EXPORT_PAGE_SIZE
        values: dict[str, AttributeValue] = {":pk": {"S": customer_pk(customer_id)}}
        condition = "PK = :pk"
        if since or until:
            # ledger_sk = "<created_at>#<txn_id>": "~" sorts after every "#<txn_id>" suffix.
            values[":since"] = {"S": since or "0000"}
            values[":until"] = {"S": (until or "9999") + "~"}
            condition += " AND ledger_sk BETWEEN :since AND :until"
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": LEDGER_BY_TIME_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": oldest_first,
            "Limit": limit,
        }
        if kinds:
            names = [f":kind{index}" for index in range(len(kinds))]
            values.update({name: {"S": kind} for name, kind in zip(names, kinds, strict=True)})
            kwargs["FilterExpression"] = f"kind IN ({', '.join(names)})"
        if cursor:
            kwargs["ExclusiveStartKey"] = decode_cursor(
                cursor, customer_id, ("PK", "SK", "ledger_sk")
            )
        found: list[Transaction] = []
        last_key: dict[str, AttributeValue] | None = None
        for _ in range(MAX_QUERIES_PER_PAGE):
            kwargs["Limit"] = limit - len(found)
            response = self._client.query(**kwargs)
            found.extend(transaction_from_item(i) for i in response.get("Items", []))  # type: ignore[arg-type]
            last_key = response.get("LastEvaluatedKey")  # type: ignore[assignment]
            if not last_key or len(found) >= limit:
                break
            kwargs["ExclusiveStartKey"] = last_key
        return Page(found, encode_cursor(last_key) if last_key else None)
