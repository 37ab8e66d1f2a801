"""`TokenBalanceLow` on EventBridge, once per crossing of the low-balance line.

    PK          SK                          item
    CUST#<id>   LOWBALANCE#<version:012d>   marker: this crossing's event was put

The stream may deliver a crossing's record more than once (a retried batch), so the event is
guarded by a marker keyed by the account version that crossed: read the marker, put the event
only if it is absent, then write it (conditional Put). The order is put-then-mark because
EventBridge and DynamoDB share no transaction: a crash between the two can only put the event
a second time on the retry, never lose it. Every event carries `id = "<customer>:<version>"`,
the same on a duplicate, so a consumer that must act once drops an id it has seen. A top-up
above the line and a new crossing is a new version, so it alerts again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, cast

from botocore.exceptions import ClientError

from token_billing.domain.account_changes import (
    EVENT_SOURCE,
    LOW_BALANCE_DETAIL_TYPE,
    LowBalanceCrossing,
)
from token_billing.store.codecs import utc_now_iso
from token_billing.store.conditions import condition_failed
from token_billing.store.table_layout import customer_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

LOW_BALANCE_PREFIX = "LOWBALANCE#"


class EventsClient(Protocol):
    """The one EventBridge call used (boto3's `events` client has it)."""

    def put_events(
        self,
        *,
        Entries: Sequence[Mapping[str, Any]],  # noqa: N803 - boto3's parameter name
    ) -> Mapping[str, Any]: ...


class EventPublishFailed(Exception):
    """EventBridge refused the entry; raised so the stream record is retried."""


def low_balance_sk(version: int) -> str:
    """Zero-padded, so a customer's markers sort in crossing order."""
    assert version >= 0
    return f"{LOW_BALANCE_PREFIX}{version:012d}"


def event_bus_name() -> str:
    name = os.environ.get("EVENT_BUS_NAME")
    if not name:
        raise RuntimeError("EVENT_BUS_NAME is not set: the function's template environment sets it")
    return name


@cache
def events_client() -> EventsClient:
    """Created on the first crossing, not at init: most invocations never put an event.

    The endpoint comes from boto3's configuration; locally `AWS_ENDPOINT_URL_EVENTBRIDGE`
    (the service id is EventBridge, not `events`) points it at the dev server.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5
    )
    return cast(EventsClient, boto3.client("events", config=config))


class LowBalanceAlerts:
    """Puts `TokenBalanceLow` once per crossing, guarded by a marker item in the table."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        events: Callable[[], EventsClient] = events_client,
        bus_name: Callable[[], str] = event_bus_name,
        clock: Callable[[], str] = utc_now_iso,
    ) -> None:
        self._client = client
        self._table = table_name
        self._events = events
        self._bus_name = bus_name
        self._clock = clock

    def notify(self, crossing: LowBalanceCrossing) -> bool:
        """Put the crossing's event unless its marker says it was put: True when put now.

        Costs per crossing: 1 GetItem (1 RCU, strongly consistent), 1 PutEvents entry and
        1 PutItem of the marker (1 WCU); a redelivery costs the GetItem only.
        """
        key = {
            "PK": {"S": customer_pk(crossing.customer_id)},
            "SK": {"S": low_balance_sk(crossing.version)},
        }
        marker = self._client.get_item(
            TableName=self._table, Key=key, ConsistentRead=True, ProjectionExpression="PK"
        )
        if marker.get("Item"):
            return False
        event_id = self._put_event(crossing)
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **key,
                    "customer_id": {"S": crossing.customer_id},
                    "version": {"N": str(crossing.version)},
                    "event_id": {"S": crossing.event_id},
                    "eventbridge_id": {"S": event_id},
                    "balance_mt": {"N": str(crossing.balance_mt)},
                    "crossed_at": {"S": crossing.crossed_at},
                    "sent_at": {"S": self._clock()},
                },
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as error:
            # Another delivery of the same record marked it between our read and write: the
            # event went out twice, with the same id, which consumers drop.
            if not condition_failed(error):
                raise
        return True

    def _put_event(self, crossing: LowBalanceCrossing) -> str:
        response = self._events().put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": LOW_BALANCE_DETAIL_TYPE,
                    "Detail": json.dumps(crossing.detail(), separators=(",", ":")),
                    "EventBusName": self._bus_name(),
                }
            ]
        )
        entries: list[Mapping[str, Any]] = list(response.get("Entries", []))
        if response.get("FailedEntryCount", 0) or not entries or "EventId" not in entries[0]:
            entry = entries[0] if entries else {}
            raise EventPublishFailed(
                f"EventBridge refused TokenBalanceLow {crossing.event_id}: "
                f"{entry.get('ErrorCode', 'no entry')} {entry.get('ErrorMessage', '')}".strip()
            )
        return str(entries[0]["EventId"])
