"""The WebSocket API's part of template.yaml: routes, the authorizer on $connect, least
privilege (only the stream function may ManageConnections, only on this API's stage)."""

from __future__ import annotations

from typing import Any

from local.template import load_template
from local.websocket_template import websocket_api

TEMPLATE = load_template()
RESOURCES = TEMPLATE.resources


def of_type(kind: str) -> dict[str, Any]:
    return {name: spec for name, spec in RESOURCES.items() if spec["Type"] == kind}


def statements(function: str) -> list[dict[str, Any]]:
    found = []
    for policy in RESOURCES[function]["Properties"].get("Policies", []):
        found.extend(policy.get("Statement", []))
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return value if isinstance(value, list) else [value]


def test_one_websocket_api_with_connect_disconnect_and_default() -> None:
    (api,) = [
        r
        for r in of_type("AWS::ApiGatewayV2::Api").values()
        if r["Properties"]["ProtocolType"] == "WEBSOCKET"
    ]
    spec = websocket_api(TEMPLATE)
    assert spec is not None
    assert spec.routes == {
        "$connect": "RealtimeFunction",
        "$disconnect": "RealtimeFunction",
    }
    # Messages are API Gateway's own: a mock answers, no function runs per message.
    assert spec.mocks == {"$default": '{"type": "pong"}'}
    assert spec.authorizer == "RealtimeAuthorizerFunction"
    assert api["Properties"]["RouteSelectionExpression"] == "$request.body.action"


def test_only_connect_has_the_request_authorizer() -> None:
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in of_type("AWS::ApiGatewayV2::Route").values()
    }
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    assert routes["$connect"]["AuthorizerId"] == {"Ref": "WebSocketAuthorizer"}
    assert "AuthorizerId" not in routes["$disconnect"]
    authorizer = RESOURCES["WebSocketAuthorizer"]["Properties"]
    assert authorizer["AuthorizerType"] == "REQUEST"
    # No identity source: a token in the subprotocol or the query string both reach it.
    assert "IdentitySource" not in authorizer


def test_the_authorizer_verifies_the_http_apis_issuer_and_audience_and_reads_nothing() -> None:
    function = RESOURCES["RealtimeAuthorizerFunction"]["Properties"]
    assert function.get("Policies") is None
    env = function["Environment"]["Variables"]
    http_jwt = RESOURCES["HttpApi"]["Properties"]["Auth"]["Authorizers"]["JwtAuthorizer"]
    assert env["JWT_ISSUER"] == http_jwt["JwtConfiguration"]["issuer"]
    assert [env["JWT_AUDIENCE"]] == http_jwt["JwtConfiguration"]["audience"]
    assert env["JWT_ALGORITHMS"] == "RS256"


def test_only_the_stream_function_manages_connections_on_this_stage() -> None:
    managers = {
        function: statement
        for function in of_type("AWS::Serverless::Function")
        for statement in statements(function)
        if any(action.startswith("execute-api:") for action in actions(statement))
    }
    assert list(managers) == ["LedgerStreamFunction"]
    statement = managers["LedgerStreamFunction"]
    assert actions(statement) == ["execute-api:ManageConnections"]
    resource = statement["Resource"]["Fn::Sub"]
    assert resource.endswith(":${WebSocketApi}/${Stage}/POST/@connections/*")
    env = RESOURCES["LedgerStreamFunction"]["Properties"]["Environment"]["Variables"]
    assert env["WEBSOCKET_MANAGEMENT_ENDPOINT"]["Fn::Sub"].endswith("/${Stage}")


def test_the_route_function_only_puts_and_deletes_connection_items() -> None:
    """PutItem covers the watch marker too (a conditional Put): no UpdateItem, no read."""
    (statement,) = statements("RealtimeFunction")
    assert sorted(actions(statement)) == ["dynamodb:DeleteItem", "dynamodb:PutItem"]
    assert statement["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}


def test_the_stream_function_reads_markers_in_batches_and_sockets_by_query() -> None:
    (statement,) = [
        s for s in statements("LedgerStreamFunction") if s.get("Sid") == "LiveBalanceConnections"
    ]
    assert sorted(actions(statement)) == [
        "dynamodb:BatchGetItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
    ]
    assert statement["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}
    # Nothing else of the stream function may batch-read or write in batches.
    others = [s for s in statements("LedgerStreamFunction") if s is not statement]
    assert not any(a.startswith("dynamodb:Batch") for s in others for a in actions(s))


def test_api_gateway_may_invoke_exactly_the_two_functions_of_this_api() -> None:
    permissions = {
        p["Properties"]["FunctionName"]["Ref"]: p["Properties"]["SourceArn"]["Fn::Sub"]
        for p in of_type("AWS::Lambda::Permission").values()
    }
    assert permissions["RealtimeAuthorizerFunction"].endswith(
        "${WebSocketApi}/authorizers/${WebSocketAuthorizer}"
    )
    assert permissions["RealtimeFunction"].endswith("${WebSocketApi}/*")


def test_the_stage_deploys_itself_and_is_throttled() -> None:
    stage = RESOURCES["WebSocketStage"]["Properties"]
    assert stage["AutoDeploy"] is True
    assert stage["StageName"] == {"Ref": "Stage"}
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    # One client's ping loop can take the pings' rate, never the stage's: well under it.
    pings = stage["RouteSettings"]["$default"]
    default = stage["DefaultRouteSettings"]
    assert pings["ThrottlingRateLimit"] * 5 <= default["ThrottlingRateLimit"]
    assert pings["ThrottlingBurstLimit"] * 5 <= default["ThrottlingBurstLimit"]
    ping = RESOURCES["WebSocketPingIntegration"]["Properties"]
    assert ping["IntegrationType"] == "MOCK"
    assert ping["RequestTemplates"] == {"$default": '{"statusCode": 200}'}
    assert "WebSocketUrl" in TEMPLATE.raw["Outputs"]
