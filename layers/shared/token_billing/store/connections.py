"""Live WebSocket connections, one item each in the customer's partition.

    PK = CUST#<id>, SK = WS#<connection_id>: connected_at, subject, ttl_epoch (2 h, API
    Gateway's own limit on a connection's life)

The $connect route puts the item, $disconnect and a `GoneException` delete it, and the TTL
drops the few that neither reached (a Lambda that timed out on $disconnect). The stream
function finds a customer's connections with one Query per customer per stream batch; the
items sort under `WS#`, never under `ACCOUNT`, so balance reads do not pay for them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from token_billing.store.table_layout import CONNECTION_PREFIX, connection_sk, customer_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

CONNECTION_TTL_S = 2 * 60 * 60  # API Gateway closes a WebSocket after 2 h at the latest
# A limit on everything: one customer's dashboard in a few tabs and devices, with room.
MAX_CONNECTIONS_READ = 100
CONNECTION_ID_MAX_LEN = 128


@dataclass(frozen=True, slots=True)
class Connection:
    customer_id: str
    connection_id: str
    connected_at_epoch: int
    expires_at_epoch: int


class Connections:
    """The table's connection items (DynamoDB only)."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def add(
        self,
        *,
        customer_id: str,
        connection_id: str,
        subject: str,
        now_epoch: int | None = None,
    ) -> Connection:
        """One PutItem (≈0.2 KB: 1 WCU). A repeated $connect of the same id overwrites."""
        assert 0 < len(connection_id) <= CONNECTION_ID_MAX_LEN, connection_id
        now = int(time.time()) if now_epoch is None else now_epoch
        connection = Connection(customer_id, connection_id, now, now + CONNECTION_TTL_S)
        self._client.put_item(
            TableName=self._table,
            Item={
                "PK": {"S": customer_pk(customer_id)},
                "SK": {"S": connection_sk(connection_id)},
                "customer_id": {"S": customer_id},
                "connection_id": {"S": connection_id},
                "subject": {"S": subject[:256]},
                "connected_at_epoch": {"N": str(now)},
                "ttl_epoch": {"N": str(connection.expires_at_epoch)},
            },
        )
        return connection

    def remove(self, *, customer_id: str, connection_id: str) -> None:
        """One DeleteItem (1 WCU); deleting a missing item is no error."""
        self._client.delete_item(
            TableName=self._table,
            Key={
                "PK": {"S": customer_pk(customer_id)},
                "SK": {"S": connection_sk(connection_id)},
            },
        )

    def of_customer(self, customer_id: str, *, now_epoch: int | None = None) -> list[Connection]:
        """The customer's live connections: one strongly consistent Query (so a socket
        opened just before a change hears of it), ≤ 1 RCU for up to 20 connections.

        Items past their TTL are left out: DynamoDB deletes expired items within days,
        not at once.
        """
        now = int(time.time()) if now_epoch is None else now_epoch
        reply = self._client.query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :ws)",
            ExpressionAttributeValues={
                ":pk": {"S": customer_pk(customer_id)},
                ":ws": {"S": CONNECTION_PREFIX},
            },
            ProjectionExpression="connection_id, connected_at_epoch, ttl_epoch",
            ConsistentRead=True,
            Limit=MAX_CONNECTIONS_READ,
        )
        found = [_connection(customer_id, item) for item in reply.get("Items", [])]
        return [connection for connection in found if connection.expires_at_epoch > now]


def _connection(customer_id: str, item: Mapping[str, Any]) -> Connection:
    return Connection(
        customer_id=customer_id,
        connection_id=str(item["connection_id"]["S"]),
        connected_at_epoch=int(item["connected_at_epoch"]["N"]),
        expires_at_epoch=int(item["ttl_epoch"]["N"]),
    )
