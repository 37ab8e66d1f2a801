"""Markers of low-balance events already put, one per crossing.

    PK          SK                          item
    CUST#<id>   LOWBALANCE#<version:012d>   marker: this crossing's event was put

Keyed by the account version that crossed, so a redelivered stream record finds its marker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from token_billing.store.conditions import condition_failed
from token_billing.store.table_layout import customer_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from token_billing.store.codecs import AttributeValue

LOW_BALANCE_PREFIX = "LOWBALANCE#"


def low_balance_sk(version: int) -> str:
    """Zero-padded, so a customer's markers sort in crossing order."""
    assert version >= 0
    return f"{LOW_BALANCE_PREFIX}{version:012d}"


class LowBalanceMarkers:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @staticmethod
    def _key(customer_id: str, version: int) -> dict[str, AttributeValue]:
        return {"PK": {"S": customer_pk(customer_id)}, "SK": {"S": low_balance_sk(version)}}

    def sent(self, customer_id: str, version: int) -> bool:
        """Whether the crossing at `version` was marked (1 strongly consistent GetItem)."""
        marker = self._client.get_item(
            TableName=self._table,
            Key=self._key(customer_id, version),
            ConsistentRead=True,
            ProjectionExpression="PK",
        )
        return bool(marker.get("Item"))

    def mark_sent(
        self,
        *,
        customer_id: str,
        version: int,
        event_id: str,
        eventbridge_id: str,
        balance_mt: int,
        crossed_at: str,
        sent_at: str,
    ) -> bool:
        """Write the marker (1 PutItem); False when another delivery marked it first."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **self._key(customer_id, version),
                    "customer_id": {"S": customer_id},
                    "version": {"N": str(version)},
                    "event_id": {"S": event_id},
                    "eventbridge_id": {"S": eventbridge_id},
                    "balance_mt": {"N": str(balance_mt)},
                    "crossed_at": {"S": crossed_at},
                    "sent_at": {"S": sent_at},
                },
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as error:
            if not condition_failed(error):
                raise
            return False
        return True
