"""The dev server over real HTTP: HTTP API routes, the Lambda Invoke API through boto3, and
the payload format 2.0 events it builds. DynamoDB Local comes from the session fixture."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from local.apigw import http_api_event
from local.devserver import DevServer
from tests.integration.helpers import dev_server_client, fund
from token_billing.store.ledger import Ledger

if TYPE_CHECKING:
    from mypy_boto3_lambda.client import LambdaClient

pytestmark = pytest.mark.integration

HTTP_TIMEOUT_S = 10


@pytest.fixture(scope="module")
def server(dev_server: DevServer) -> DevServer:
    return dev_server


@pytest.fixture
def lambda_client(server: DevServer) -> LambdaClient:
    client: LambdaClient = dev_server_client("lambda", server, read_timeout_s=HTTP_TIMEOUT_S)
    return client


def request(
    server: DevServer, method: str, path: str, body: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of one real HTTP request; error statuses are answers too."""
    url = server.url + path  # always http://127.0.0.1:<port>
    http_request = urllib.request.Request(url, data=body, method=method)  # noqa: S310
    http_request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(http_request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def debit_payload(customer_id: str, key: str = "k1") -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "idempotency_key": key,
        "usage": [{"action": "api_call", "quantity": 3}],
    }


def balance_mt(ledger: Ledger, customer_id: str) -> int:
    account = ledger.get_account(customer_id)
    assert account is not None
    return account.balance_mt


# ---- HTTP API ------------------------------------------------------------------------


def test_token_packages_route_returns_the_catalog(server: DevServer) -> None:
    status, body = request(server, "GET", "/api/v1/token-packages")

    assert status == 200
    assert [package["id"] for package in body["data"]] == ["starter", "growth", "pro"]


def test_invalid_json_is_a_400_in_the_error_shape(server: DevServer) -> None:
    status, body = request(server, "POST", "/api/v1/usage-estimate", b"{not json")

    assert status == 400
    assert body["error"]["code"] == "invalid_request"
    assert set(body["error"]) >= {"message", "retryable"}


def test_unknown_path_is_api_gateways_404(server: DevServer) -> None:
    assert request(server, "GET", "/api/v1/nowhere") == (404, {"message": "Not Found"})


def test_known_path_with_another_method_is_a_404(server: DevServer) -> None:
    assert request(server, "DELETE", "/api/v1/token-packages") == (404, {"message": "Not Found"})


# ---- Lambda Invoke API -----------------------------------------------------------------


def test_invoke_debit_function_debits_once(
    lambda_client: LambdaClient, ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 10_000)
    payload = json.dumps(debit_payload(customer_id))

    first = lambda_client.invoke(FunctionName="DebitFunction", Payload=payload)
    first_body = json.loads(first["Payload"].read())
    assert first["StatusCode"] == 200
    assert "FunctionError" not in first
    assert first["ExecutedVersion"] == "$LATEST"
    assert first_body["ok"] is True
    assert first_body["debited"] == "0.3"
    assert first_body["debited_mt"] == 300
    assert first_body["replayed"] is False
    assert balance_mt(ledger, customer_id) == 9_700

    again = lambda_client.invoke(FunctionName="DebitFunction", Payload=payload)
    again_body = json.loads(again["Payload"].read())
    assert again_body["replayed"] is True
    assert again_body["transaction_id"] == first_body["transaction_id"]
    assert balance_mt(ledger, customer_id) == 9_700


def test_invoke_by_arn_with_qualifier(
    lambda_client: LambdaClient, ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 1_000)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:DebitFunction:$LATEST"

    response = lambda_client.invoke(
        FunctionName=arn, Payload=json.dumps(debit_payload(customer_id))
    )

    assert json.loads(response["Payload"].read())["debited_mt"] == 300


def test_invoke_unknown_function_raises_resource_not_found(lambda_client: LambdaClient) -> None:
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.invoke(FunctionName="NoSuchFunction", Payload=b"{}")


def test_invoke_with_invalid_json_raises_invalid_request_content(
    lambda_client: LambdaClient,
) -> None:
    with pytest.raises(lambda_client.exceptions.InvalidRequestContentException):
        lambda_client.invoke(FunctionName="DebitFunction", Payload=b"{not json")


def test_handler_exception_is_an_unhandled_function_error(lambda_client: LambdaClient) -> None:
    # The packages function expects an HTTP API event; `{}` makes its resolver raise.
    response = lambda_client.invoke(FunctionName="PackagesFunction", Payload=b"")

    body = json.loads(response["Payload"].read())
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "KeyError"
    assert body["stackTrace"]


def test_event_invocation_is_accepted_and_runs_in_the_background(
    lambda_client: LambdaClient, ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 10_000)

    response = lambda_client.invoke(
        FunctionName="DebitFunction",
        InvocationType="Event",
        Payload=json.dumps(debit_payload(customer_id)),
    )

    assert response["StatusCode"] == 202
    deadline = time.monotonic() + HTTP_TIMEOUT_S
    while balance_mt(ledger, customer_id) != 9_700:
        assert time.monotonic() < deadline, "the Event invocation never debited"
        time.sleep(0.05)


def test_dry_run_invokes_nothing(
    lambda_client: LambdaClient, ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 10_000)

    response = lambda_client.invoke(
        FunctionName="DebitFunction",
        InvocationType="DryRun",
        Payload=json.dumps(debit_payload(customer_id)),
    )

    assert response["StatusCode"] == 204
    assert balance_mt(ledger, customer_id) == 10_000


# ---- payload format 2.0 events ----------------------------------------------------------


def test_http_api_event_shape() -> None:
    event = http_api_event(
        "get",
        "/api/v1/customers/cust_1/tokens",
        route_key="GET /api/v1/customers/{customer_id}/tokens",
        path_parameters={"customer_id": "cust_1"},
        headers=[
            ("Host", "127.0.0.1:3000"),
            ("User-Agent", "curl/8"),
            ("X-Thing", "a"),
            ("x-thing", "b"),
            ("Cookie", "a=1; b=2"),
        ],
        raw_query_string="limit=10&tag=x&tag=y",
        source_ip="10.0.0.1",
    )

    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /api/v1/customers/{customer_id}/tokens"
    assert event["rawPath"] == "/api/v1/customers/cust_1/tokens"
    assert event["rawQueryString"] == "limit=10&tag=x&tag=y"
    assert event["pathParameters"] == {"customer_id": "cust_1"}
    assert event["queryStringParameters"] == {"limit": "10", "tag": "x,y"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["headers"] == {"host": "127.0.0.1:3000", "user-agent": "curl/8", "x-thing": "a,b"}
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    context = event["requestContext"]
    assert context["http"] == {
        "method": "GET",
        "path": "/api/v1/customers/cust_1/tokens",
        "protocol": "HTTP/1.1",
        "sourceIp": "10.0.0.1",
        "userAgent": "curl/8",
    }
    assert context["routeKey"] == event["routeKey"]
    assert context["stage"] == "$default"
    assert context["domainName"] == "127.0.0.1:3000"
    uuid.UUID(context["requestId"])
    assert abs(context["timeEpoch"] - time.time() * 1000) < 60_000
    assert time.strftime("/%Y:", time.gmtime(context["timeEpoch"] / 1000)) in context["time"]
    assert context["time"].endswith(" +0000")


def test_http_api_event_without_query_or_path_parameters() -> None:
    event = http_api_event(
        "POST",
        "/api/v1/usage-estimate",
        route_key="POST /api/v1/usage-estimate",
        headers=[("Content-Type", "application/json")],
        body=b'{"usage": []}',
    )

    assert "queryStringParameters" not in event
    assert "pathParameters" not in event
    assert "cookies" not in event
    assert event["body"] == '{"usage": []}'
    assert event["isBase64Encoded"] is False


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/octet-stream", b"plain ascii"), ("application/json", b"\xff\xfe not utf-8")],
)
def test_http_api_event_base64_encodes_binary_bodies(content_type: str, body: bytes) -> None:
    event = http_api_event(
        "POST",
        "/upload",
        route_key="POST /upload",
        headers=[("Content-Type", content_type)],
        body=body,
    )

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_one_function_runs_one_event_at_a_time_as_one_execution_environment(
    server: DevServer,
) -> None:
    """Concurrent requests to one function: Powertools' resolver keeps the current request
    on its app, which Lambda never shares between two events (no `_route_args` 500s)."""
    from concurrent.futures import ThreadPoolExecutor

    body = {"usage": [{"action": "vm_runtime", "quantity": 60}]}

    def estimate(_: int) -> int:
        status, _reply = request(
            server, "POST", "/api/v1/usage-estimate", json.dumps(body).encode()
        )
        return status

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(estimate, range(80)))
    assert statuses == [200] * 80


def test_two_http_api_functions_never_read_each_others_request(server: DevServer) -> None:
    """Powertools' resolver keeps the request on its base class, shared by every resolver
    app of a process; in the dev server all functions share one. A customer's vm-limits
    read (its claims) racing the public catalog (no authorizer): each answers its own
    request (seen before: a vm-limits read served with the catalog's event, a 401)."""
    from concurrent.futures import ThreadPoolExecutor

    from local import identity

    customer = f"cust_race_{uuid.uuid4().hex[:8]}"
    token = identity.mint(customer_id=customer)

    def vm_limits(_: int) -> int:
        url = f"{server.url}/api/v1/customers/{customer}/tokens/vm-limits"
        http_request = urllib.request.Request(url)  # noqa: S310
        http_request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(http_request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as error:
            with error:
                return int(error.code)

    def catalog(_: int) -> int:
        return request(server, "GET", "/api/v1/token-packages")[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        pairs = [(pool.submit(vm_limits, n), pool.submit(catalog, n)) for n in range(150)]
        statuses = [a.result() for a, _ in pairs], [b.result() for _, b in pairs]
    assert statuses == ([200] * 150, [200] * 150)
