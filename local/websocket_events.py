"""The WebSocket API's events as API Gateway builds them: a connection's record, the
`$connect` REQUEST authorizer's input, each route's Lambda proxy event, and the context an
authorizer's answer grants. `local.websocket` serves the sockets and sends these."""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.sync.server import ServerConnection

from local.apigw import LOCAL_ACCOUNT_ID, LOCAL_API_ID, request_time

LOCAL_STAGE = "local"


def new_connection_id() -> str:
    """Shaped like API Gateway's (`L0SM9cOFvHcCIhw=`): 12 characters, URL-safe here."""
    return base64.urlsafe_b64encode(os.urandom(8)).decode()


@dataclass
class LocalConnection:
    connection_id: str
    connected_at_ms: int
    headers: dict[str, str]
    query: dict[str, str]
    source_ip: str
    authorizer: dict[str, Any] = field(default_factory=dict)
    subprotocol: str | None = None
    socket: ServerConnection | None = None
    last_active: float = field(default_factory=time.monotonic)


def request_context(
    connection: LocalConnection, route_key: str, event_type: str, host: str
) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": uuid.uuid4().hex[:16],
        "requestTime": request_time(now_ms),
        "messageDirection": "IN",
        "stage": LOCAL_STAGE,
        "connectedAt": connection.connected_at_ms,
        "requestTimeEpoch": now_ms,
        "identity": {
            "sourceIp": connection.source_ip,
            "userAgent": connection.headers.get("User-Agent", ""),
        },
        "requestId": uuid.uuid4().hex[:16],
        "domainName": host,
        "connectionId": connection.connection_id,
        "apiId": LOCAL_API_ID,
    }
    if connection.authorizer:
        context["authorizer"] = connection.authorizer
    return context


def authorizer_event(connection: LocalConnection, host: str) -> dict[str, Any]:
    """A WebSocket REQUEST authorizer's input for $connect."""
    arn = f"arn:aws:execute-api:us-east-1:{LOCAL_ACCOUNT_ID}:{LOCAL_API_ID}/{LOCAL_STAGE}/$connect"
    return {
        "type": "REQUEST",
        "methodArn": arn,
        "headers": dict(connection.headers),
        "multiValueHeaders": {k: [v] for k, v in connection.headers.items()},
        "queryStringParameters": dict(connection.query) or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in connection.query.items()} or None,
        "stageVariables": {},
        "requestContext": request_context(connection, "$connect", "CONNECT", host),
    }


def route_event(
    connection: LocalConnection,
    route_key: str,
    event_type: str,
    host: str,
    *,
    body: str | None = None,
    close: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """A route's Lambda proxy event: $connect carries the request, others the message."""
    event: dict[str, Any] = {
        "requestContext": request_context(connection, route_key, event_type, host),
        "isBase64Encoded": False,
    }
    if event_type == "CONNECT":
        event["headers"] = dict(connection.headers)
        event["multiValueHeaders"] = {k: [v] for k, v in connection.headers.items()}
        event["queryStringParameters"] = dict(connection.query) or None
    if body is not None:
        event["body"] = body
    if close is not None:
        event["requestContext"]["disconnectStatusCode"] = close[0]
        event["requestContext"]["disconnectReason"] = close[1]
    return event


def authorizer_context(answer: Any) -> dict[str, Any] | None:
    """The context a REQUEST authorizer's Allow grants (with its principalId), or None when
    its policy does not allow execute-api:Invoke."""
    if not isinstance(answer, Mapping):
        return None
    statements = (answer.get("policyDocument") or {}).get("Statement") or []
    allowed = any(
        s.get("Effect") == "Allow" and "execute-api:Invoke" in str(s.get("Action"))
        for s in statements
    )
    denied = any(s.get("Effect") == "Deny" for s in statements)
    if not allowed or denied:
        return None
    context = {str(k): v for k, v in (answer.get("context") or {}).items()}
    return {**context, "principalId": str(answer.get("principalId", ""))}
