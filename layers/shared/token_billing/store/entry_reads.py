"""Reads of a customer's ledger entries: what reconciliation and the tests sum against the
account's balance. A part of `Ledger` (its client and table)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from token_billing.store.codecs import Item, attr_s
from token_billing.store.table_layout import ENTRY_PREFIX, customer_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class EntryReads:
    """Every ledger entry of a customer, and their sum."""

    _client: DynamoDBClient
    _table: str

    def iter_entries(self, customer_id: str, *, projection: str | None = None) -> Iterator[Item]:
        """Every ledger entry of a customer, oldest key first (strongly consistent)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": attr_s(customer_pk(customer_id)),
                ":prefix": attr_s(ENTRY_PREFIX),
            },
            "ConsistentRead": True,
        }
        if projection:
            kwargs["ProjectionExpression"] = projection
        while True:
            response = self._client.query(**kwargs)
            yield from response.get("Items", [])  # type: ignore[misc]
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return
            kwargs["ExclusiveStartKey"] = last_key

    def sum_entries_mt(self, customer_id: str) -> int:
        """Sum of a customer's ledger entries: what their balance must equal."""
        return sum(
            int(item["amount_mt"]["N"])
            for item in self.iter_entries(customer_id, projection="amount_mt")
        )
