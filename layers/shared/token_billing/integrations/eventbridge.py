"""EventBridge: the bus our events go to, and putting one event on it."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Protocol, cast


class EventsClient(Protocol):
    """The one EventBridge call used (boto3's `events` client has it)."""

    def put_events(
        self,
        *,
        Entries: Sequence[Mapping[str, Any]],  # noqa: N803 - boto3's parameter name
    ) -> Mapping[str, Any]: ...


class EventPublishFailed(Exception):
    """EventBridge refused the entry; raised so the stream record is retried."""


def event_bus_name() -> str:
    name = os.environ.get("EVENT_BUS_NAME")
    if not name:
        raise RuntimeError("EVENT_BUS_NAME is not set: the function's template environment sets it")
    return name


@cache
def events_client() -> EventsClient:
    """Created on the first event, not at init: most invocations never put one.

    The endpoint comes from boto3's configuration; locally `AWS_ENDPOINT_URL_EVENTBRIDGE`
    (the service id is EventBridge, not `events`) points it at the dev server.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5
    )
    return cast(EventsClient, boto3.client("events", config=config))


def put_event(
    events: EventsClient,
    *,
    bus_name: str,
    source: str,
    detail_type: str,
    detail: Mapping[str, Any],
    event_id: str,
) -> str:
    """Put one event; EventBridge's id for it. EventPublishFailed when it refuses the entry."""
    response = events.put_events(
        Entries=[
            {
                "Source": source,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, separators=(",", ":")),
                "EventBusName": bus_name,
            }
        ]
    )
    entries: list[Mapping[str, Any]] = list(response.get("Entries", []))
    if response.get("FailedEntryCount", 0) or not entries or "EventId" not in entries[0]:
        entry = entries[0] if entries else {}
        raise EventPublishFailed(
            f"EventBridge refused {detail_type} {event_id}: "
            f"{entry.get('ErrorCode', 'no entry')} {entry.get('ErrorMessage', '')}".strip()
        )
    return str(entries[0]["EventId"])
