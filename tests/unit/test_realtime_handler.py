"""The WebSocket route function on moto, with the events in events/realtime/: $connect
records the connection (2 h TTL) and the watch marker and echoes the subprotocol,
$disconnect deletes the connection, $default is not its route, and a route without the
authorizer's context is refused."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from tests.conftest import fake_context, load_event
from token_billing import runtime
from token_billing.store.connections import CONNECTION_TTL_S, Connections


@pytest.fixture
def handler(moto_table: str) -> Any:
    import realtime_handler

    return realtime_handler.lambda_handler


@pytest.fixture
def connections(moto_table: str) -> Connections:
    return Connections(runtime.dynamodb_client(), moto_table)


def test_connect_records_the_connection_with_a_2_hour_ttl(
    handler: Any, connections: Connections
) -> None:
    reply = handler(load_event("realtime/connect.json"), fake_context())
    assert reply == {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "token-billing.v1"}}
    (connection,) = connections.of_customer("cust_demo")
    assert connection.connection_id == "KmVfncfFoAMCIhw="
    assert connection.expires_at_epoch - connection.connected_at_epoch == CONNECTION_TTL_S
    assert abs(connection.connected_at_epoch - time.time()) < 60


def test_connect_puts_the_customers_watch_marker_and_disconnect_leaves_it(
    handler: Any, connections: Connections
) -> None:
    handler(load_event("realtime/connect.json"), fake_context())
    assert connections.watched(["cust_demo", "cust_other"]).customers == {"cust_demo"}
    handler(load_event("realtime/disconnect.json"), fake_context())
    assert connections.watched(["cust_demo"]).customers == {"cust_demo"}  # until it expires


def test_connect_without_a_subprotocol_echoes_none(handler: Any) -> None:
    event = load_event("realtime/connect.json")
    event["requestContext"]["authorizer"]["subprotocol"] = ""
    assert handler(event, fake_context()) == {"statusCode": 200}


def test_disconnect_deletes_it(handler: Any, connections: Connections) -> None:
    handler(load_event("realtime/connect.json"), fake_context())
    assert handler(load_event("realtime/disconnect.json"), fake_context()) == {"statusCode": 200}
    assert connections.of_customer("cust_demo") == []


def test_a_message_is_not_this_functions_route(handler: Any) -> None:
    """API Gateway answers `$default` itself (a MOCK integration): should one ever arrive,
    the function refuses it without a DynamoDB request."""
    event = load_event("realtime/connect.json")
    event["requestContext"] |= {"routeKey": "$default", "eventType": "MESSAGE"}
    assert handler(event, fake_context())["statusCode"] == 400


def test_the_customer_comes_from_the_authorizer_never_from_the_request(
    handler: Any, connections: Connections
) -> None:
    event = load_event("realtime/connect.json")
    event["queryStringParameters"] = {"customer_id": "cust_other"}
    handler(event, fake_context())
    assert connections.of_customer("cust_other") == []
    assert len(connections.of_customer("cust_demo")) == 1


def test_a_route_without_the_authorizers_context_is_refused(
    handler: Any, connections: Connections
) -> None:
    event = copy.deepcopy(load_event("realtime/connect.json"))
    del event["requestContext"]["authorizer"]
    assert handler(event, fake_context()) == {"statusCode": 403}
    assert connections.of_customer("cust_demo") == []


def test_expired_connections_are_not_returned(connections: Connections) -> None:
    now = int(time.time())
    connections.add(customer_id="cust_x", connection_id="old", subject="s", now_epoch=now - 7300)
    connections.add(customer_id="cust_x", connection_id="new", subject="s", now_epoch=now)
    assert [c.connection_id for c in connections.of_customer("cust_x")] == ["new"]


def test_the_sample_authorizer_event_carries_the_token_as_a_subprotocol() -> None:
    from token_billing.edge.socket_auth import connect_token

    event = load_event("realtime_authorizer/connect.json")
    token, subprotocol = connect_token(event["headers"], event["queryStringParameters"])
    assert subprotocol == "token-billing.v1"
    assert token is not None
    assert token.count(".") == 2
