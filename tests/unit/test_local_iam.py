"""The local IAM check: roles as SAM makes them, each call mapped to the actions AWS
authorizes it by, and a refused call raised as AWS raises it (no AWS, no DynamoDB)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from local import iam_check
from local.iam_actions import (
    ApiCall,
    LocalWebSocketApi,
    UnmappedOperation,
    required_permissions,
)
from local.iam_roles import FunctionRole, function_roles
from local.template import TEMPLATE_PATH, load_template
from tests.template_copies import without_action

ACCOUNT, REGION = "123456789012", "us-east-1"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/LedgerTable"
WEBSOCKET = LocalWebSocketApi("WebSocketApi", "dev")


@pytest.fixture(scope="module")
def roles() -> dict[str, FunctionRole]:
    return function_roles(TEMPLATE_PATH)


def permissions(service: str, operation: str, url: str = "", **params: Any) -> list[Any]:
    return required_permissions(ApiCall(service, operation, params, url), WEBSOCKET)


def test_every_template_function_has_its_role_with_the_managed_policies_sam_attaches(
    roles: dict[str, FunctionRole],
) -> None:
    assert set(roles) == set(load_template().functions())
    for role in roles.values():
        assert role.role == f"{role.function}Role"
        # AWSLambdaBasicExecutionRole and (Tracing: Active) AWSXrayWriteOnlyAccess.
        assert role.allows("logs:PutLogEvents", "arn:aws:logs:us-east-1:123456789012:log-group:x")
        assert role.allows("xray:PutTraceSegments", "*")
    # The authorizer has no policy of its own: nothing but logs and traces.
    assert not roles["RealtimeAuthorizerFunction"].allows("dynamodb:GetItem", TABLE_ARN)


def test_statements_resolve_to_the_local_names(roles: dict[str, FunctionRole]) -> None:
    charger = roles["TopUpChargerFunction"]
    assert charger.allows("dynamodb:PutItem", TABLE_ARN)  # the recovery Checkout's link
    assert not charger.allows("dynamodb:DeleteItem", TABLE_ARN)
    assert charger.allows(
        "events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/TokenBillingEventBus"
    )
    assert not charger.allows("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/x")
    balances = roles["BalancesFunction"]
    assert balances.allows("dynamodb:Query", f"{TABLE_ARN}/index/ledger-by-time")
    assert not balances.allows("dynamodb:Query", f"{TABLE_ARN}/index/active-holds")
    assert not balances.allows("dynamodb:PutItem", TABLE_ARN)
    sweeper = roles["HoldsSweeperFunction"]
    assert sweeper.allows("dynamodb:Query", f"{TABLE_ARN}/index/active-holds")
    assert not sweeper.allows("dynamodb:Query", TABLE_ARN)
    push = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:WebSocketApi/dev/POST/@connections/abc="
    assert roles["LedgerStreamFunction"].allows("execute-api:ManageConnections", push)
    assert not roles["RealtimeFunction"].allows("execute-api:ManageConnections", push)
    assert roles["DebitFunction"].allows(
        "secretsmanager:GetSecretValue",
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:AgentCredentialKeys",
    )


def test_a_transaction_is_authorized_item_by_item() -> None:
    items = [
        {"Update": {"TableName": "LedgerTable"}},
        {"Put": {"TableName": "LedgerTable"}},
        {"ConditionCheck": {"TableName": "Other"}},
        {"Delete": {"TableName": "LedgerTable"}},
    ]
    assert permissions("dynamodb", "TransactWriteItems", TransactItems=items) == [
        ("dynamodb:UpdateItem", TABLE_ARN),
        ("dynamodb:PutItem", TABLE_ARN),
        ("dynamodb:ConditionCheckItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Other"),
        ("dynamodb:DeleteItem", TABLE_ARN),
    ]


def test_queries_of_an_index_batches_and_exports_name_their_resources() -> None:
    assert permissions("dynamodb", "Query", TableName="LedgerTable", IndexName="active-holds") == [
        ("dynamodb:Query", f"{TABLE_ARN}/index/active-holds")
    ]
    assert permissions("dynamodb", "BatchGetItem", RequestItems={"LedgerTable": {}, "B": {}}) == [
        ("dynamodb:BatchGetItem", TABLE_ARN),
        ("dynamodb:BatchGetItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/B"),
    ]
    assert permissions("dynamodb", "ExportTableToPointInTime", TableArn=TABLE_ARN) == [
        ("dynamodb:ExportTableToPointInTime", TABLE_ARN)
    ]


def test_events_go_to_each_entrys_bus_and_pushes_to_the_connection() -> None:
    entries = [{"EventBusName": "TokenBillingEventBus"}, {}]
    assert permissions("events", "PutEvents", Entries=entries) == [
        ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/TokenBillingEventBus"),
        ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"),
    ]
    local = permissions(
        "apigatewaymanagementapi",
        "PostToConnection",
        "http://127.0.0.1:3000/@connections/c1",
        ConnectionId="c1",
    )
    assert local == [
        (
            "execute-api:ManageConnections",
            f"arn:aws:execute-api:{REGION}:{ACCOUNT}:WebSocketApi/dev/POST/@connections/c1",
        )
    ]
    deployed = permissions(
        "apigatewaymanagementapi",
        "DeleteConnection",
        "https://a1b2.execute-api.us-east-1.amazonaws.com/prod/@connections/c1",
        ConnectionId="c1",
    )
    assert deployed[0][1].endswith(":a1b2/prod/DELETE/@connections/c1")


def test_an_operation_nobody_mapped_is_a_loud_failure_never_an_allow() -> None:
    with pytest.raises(UnmappedOperation, match=r"athena\.StartQueryExecution"):
        permissions("athena", "StartQueryExecution", QueryString="SELECT 1")
    with pytest.raises(UnmappedOperation, match=r"dynamodb\.ExecuteStatement"):
        permissions("dynamodb", "ExecuteStatement", Statement="SELECT * FROM t")


def _client() -> Any:
    return boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url="http://127.0.0.1:9",  # never reached: refused or stubbed first
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


ITEM = {"PK": {"S": "CUST#x"}, "SK": {"S": "ACCOUNT"}}


def test_a_refused_call_is_accessdenied_naming_function_action_and_resource(
    capsys: pytest.CaptureFixture[str],
) -> None:
    iam_check.install()
    client = _client()
    with iam_check.acting_as("BalancesFunction"), pytest.raises(ClientError) as refused:
        client.put_item(TableName="LedgerTable", Item=ITEM)
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Message"] == (
        "User: arn:aws:sts::123456789012:assumed-role/BalancesFunctionRole/BalancesFunction is"
        f" not authorized to perform: dynamodb:PutItem on resource: {TABLE_ARN} because no"
        " identity-based policy allows the dynamodb:PutItem action"
    )
    # The console names the function too (a handler may swallow the error).
    assert "IAM (local check): BalancesFunction: AccessDeniedException" in capsys.readouterr().err


def test_an_allowed_call_and_a_call_outside_any_function_go_through() -> None:
    iam_check.install()
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("get_item", {}, {"TableName": "LedgerTable", "Key": ITEM})
        stub.add_response("put_item", {}, {"TableName": "LedgerTable", "Item": ITEM})
        with iam_check.acting_as("BalancesFunction"):
            client.get_item(TableName="LedgerTable", Key=ITEM)
        client.put_item(TableName="LedgerTable", Item=ITEM)  # a test's own write
        stub.assert_no_pending_responses()


def test_a_functions_thread_pool_works_as_that_function() -> None:
    iam_check.install()
    client = _client()
    with ThreadPoolExecutor(2) as pool, iam_check.acting_as("BalancesFunction"):
        refused = pool.submit(client.put_item, TableName="LedgerTable", Item=ITEM)
        with pytest.raises(ClientError, match="AccessDeniedException"):
            refused.result(timeout=10)


def test_a_stream_consumer_whose_role_cannot_read_the_stream_is_refused_as_lambda_does(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "template.yaml"
    copy.write_text(
        without_action(
            TEMPLATE_PATH.read_text(),
            "LedgerStreamFunction",
            "ReadTheTableStream",
            "dynamodb:GetRecords",
        )
    )
    assert (
        iam_check.IamCheck(TEMPLATE_PATH).stream_source_refusal(
            "LedgerStreamFunction", "LedgerTable"
        )
        is None
    )
    refusal = iam_check.IamCheck(copy).stream_source_refusal("LedgerStreamFunction", "LedgerTable")
    assert refusal is not None
    assert refusal.startswith("LedgerStreamFunction: Cannot access stream arn:aws:dynamodb:")
