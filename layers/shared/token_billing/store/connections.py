"""Live WebSocket connections, one item each in the customer's partition, and one watch
marker per customer watched.

    PK = CUST#<id>, SK = WS#<connection_id>: connected_at, subject, ttl_epoch (2 h, API
    Gateway's own limit on a connection's life)
    PK = CUST#<id>, SK = WATCH: until_epoch = the latest ttl_epoch of the customer's
    connections, ttl_epoch the same

The $connect route puts the marker (only ever moving `until_epoch` forward) and then the
connection item; $disconnect and a `GoneException` delete the connection item, and the TTL
drops the few that neither reached (a Lambda that timed out on $disconnect). The marker is
left to its TTL: a stale one costs a Query until it expires, no message.

The stream function reads the markers of every customer changed in a batch with one
BatchGetItem (`watched`), and Queries the connections (`of_customer`) only of customers
with an unexpired marker. The items sort under `WS#` and `WATCH`, never under `ACCOUNT`,
so balance reads do not pay for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from token_billing.store.conditions import condition_failed
from token_billing.store.table_layout import (
    CONNECTION_PREFIX,
    CUSTOMER_PREFIX,
    WATCH_SK,
    connection_sk,
    customer_pk,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

CONNECTION_TTL_S = 2 * 60 * 60  # API Gateway closes a WebSocket after 2 h at the latest
# A limit on everything: one customer's dashboard in a few tabs and devices, with room.
MAX_CONNECTIONS_READ = 100
CONNECTION_ID_MAX_LEN = 128
BATCH_GET_MAX_KEYS = 100  # DynamoDB's limit per BatchGetItem
# UnprocessedKeys (throttling) are asked again this many times, after a short pause each;
# what is still unread then is reported, and its changes are not pushed (the next change
# replaces them), so a throttled table never holds up the stream for long.
UNPROCESSED_RETRIES = 3
UNPROCESSED_BACKOFF_S = 0.05


@dataclass(frozen=True, slots=True)
class Watched:
    """What one `watched` call found: the customers with an unexpired marker, and those
    whose marker could not be read (UnprocessedKeys after the retries)."""

    customers: frozenset[str]
    unread: frozenset[str]
    requests: int  # BatchGetItem calls sent


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
        """The watch marker, then the connection item: two PutItems (each ≤ 1 KB: 1 WRU).

        The marker first, so a connection item never exists without a marker the stream
        sees; a failure between the two leaves only a marker, which costs a Query until it
        expires. A repeated $connect of the same id overwrites.
        """
        assert 0 < len(connection_id) <= CONNECTION_ID_MAX_LEN, connection_id
        now = int(time.time()) if now_epoch is None else now_epoch
        connection = Connection(customer_id, connection_id, now, now + CONNECTION_TTL_S)
        self.mark_watched(customer_id, until_epoch=connection.expires_at_epoch)
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

    def mark_watched(self, customer_id: str, *, until_epoch: int) -> None:
        """Put the customer's marker unless it already runs as long: a conditional PutItem
        (the marker is only keys and two numbers, so a Put is the whole item; 1 WRU, also
        when the condition refuses it). `until_epoch` only ever moves forward, so a socket
        opened earlier never shortens a later one's watch."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "PK": {"S": customer_pk(customer_id)},
                    "SK": {"S": WATCH_SK},
                    "until_epoch": {"N": str(until_epoch)},
                    "ttl_epoch": {"N": str(until_epoch)},
                },
                ConditionExpression="attribute_not_exists(until_epoch) OR until_epoch < :until",
                ExpressionAttributeValues={":until": {"N": str(until_epoch)}},
            )
        except ClientError as error:
            if not condition_failed(error):
                raise
            # a marker running at least as long is there already

    def watched(
        self,
        customer_ids: Collection[str],
        *,
        now_epoch: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Watched:
        """Which of these customers have an unexpired marker: one strongly consistent
        BatchGetItem per 100 customers (so a socket opened just before a change hears of
        it), 1 RRU per customer asked, found or not (each key is read as a GetItem).

        UnprocessedKeys are asked again up to `UNPROCESSED_RETRIES` times; any still unread
        are returned as `unread`.
        """
        now = int(time.time()) if now_epoch is None else now_epoch
        ordered = sorted(set(customer_ids))
        found: set[str] = set()
        unread: set[str] = set()
        requests = 0
        for start in range(0, len(ordered), BATCH_GET_MAX_KEYS):
            keys: list[dict[str, Any]] = [
                {"PK": {"S": customer_pk(customer_id)}, "SK": {"S": WATCH_SK}}
                for customer_id in ordered[start : start + BATCH_GET_MAX_KEYS]
            ]
            for attempt in range(UNPROCESSED_RETRIES + 1):
                if attempt:
                    sleep(UNPROCESSED_BACKOFF_S * 2 ** (attempt - 1))
                reply = self._client.batch_get_item(
                    RequestItems={
                        self._table: {
                            "Keys": keys,
                            "ConsistentRead": True,
                            "ProjectionExpression": "PK, until_epoch",
                        }
                    }
                )
                requests += 1
                for item in reply.get("Responses", {}).get(self._table, []):
                    if int(item["until_epoch"]["N"]) > now:
                        found.add(str(item["PK"]["S"]).removeprefix(CUSTOMER_PREFIX))
                unprocessed = reply.get("UnprocessedKeys", {}).get(self._table)
                keys = [dict(key) for key in unprocessed["Keys"]] if unprocessed else []
                if not keys:
                    break
            unread.update(str(key["PK"]["S"]).removeprefix(CUSTOMER_PREFIX) for key in keys)
        return Watched(frozenset(found), frozenset(unread), requests)

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
