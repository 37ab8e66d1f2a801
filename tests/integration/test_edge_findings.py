"""Issue 16's findings at the edges, each failing on the code before the fix: undecodable
bodies, the documented 401, the dev server's imports, logs and metrics."""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import pytest

from local import devserver, dynamodb_local, identity
from local.devserver import DevServer
from tests import stripe_events
from tests.conftest import FakeLambdaContext, load_event
from tests.integration.helpers import assert_consistent, fund, use_local_stripe
from token_billing.store.ledger import Ledger

OPENAPI = json.loads((Path(__file__).resolve().parents[2] / "openapi.json").read_text())


def raw(server: DevServer, method: str, path: str, body: bytes, **headers: str) -> tuple[int, Any]:
    request = urllib.request.Request(server.url + path, data=body, method=method)  # noqa: S310
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, _parsed(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, _parsed(error.read())


def _parsed(data: bytes) -> Any:
    try:
        return json.loads(data or b"null")
    except ValueError:
        return data.decode(errors="replace")  # the CSV export


@pytest.fixture(scope="module")
def server(dev_server: DevServer) -> DevServer:
    return dev_server


def test_a_body_that_is_not_utf8_is_a_400_on_every_route(
    server: DevServer, ledger: Ledger, customer_id: str
) -> None:
    """API Gateway base64-encodes it; Powertools' decoded_body raised and the route
    answered 500 (grants, usage-estimate, purchase)."""
    use_local_stripe(server)
    fund(ledger, customer_id, 5_000_000)
    before = assert_consistent(ledger, customer_id)
    admin = identity.mint(admin=True)
    for route in server.routes:
        path = route.path.replace("{id}", customer_id)
        status, body = raw(
            server,
            route.method,
            path,
            b"\xff\xfe{\x00\x81 not utf-8",
            Authorization=f"Bearer {admin}",
            Content_Type="application/json",
            Idempotency_Key="edge-1",
            Stripe_Signature="t=1,v1=00",
        )
        assert status < 500, (route.method, route.path, status, body)
        if route.method in ("POST", "PUT"):
            assert status == 400, (route.path, body)
            assert body["error"]["code"] == "invalid_request", (route.path, body)
    assert assert_consistent(ledger, customer_id) == before


def test_broken_base64_from_the_gateway_is_a_400_at_the_webhook() -> None:
    import webhook_handler

    event = stripe_events.webhook_request(b"{}")
    event.update(body="%%% not base64 %%%", isBase64Encoded=True)
    reply = webhook_handler.lambda_handler(event, FakeLambdaContext())
    assert reply["statusCode"] == 400
    assert json.loads(reply["body"])["error"]["code"] == "invalid_request"


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = OPENAPI
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _accepts(schema: dict[str, Any], value: Any) -> bool:
    """The small part of JSON Schema the 401 documents use."""
    schema = _resolve(schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return any(_accepts(option, value) for option in schema[key])
    if schema.get("type") == "object":
        if not isinstance(value, dict) or not set(schema.get("required", ())) <= set(value):
            return False
        properties = schema.get("properties", {})
        return all(_accepts(properties[k], v) for k, v in value.items() if k in properties)
    if schema.get("type") == "string":
        return isinstance(value, str)
    return True


def test_the_documented_401_is_the_body_clients_receive(server: DevServer) -> None:
    """API Gateway's JWT authorizer answers {"message": "Unauthorized"}, and the dev
    server copies it; openapi.json documented the one error shape instead."""
    status, body = raw(server, "GET", "/api/v1/customers/cust_x/tokens", b"")
    assert (status, body) == (401, {"message": "Unauthorized"})
    authorized = [
        (path, method, operation)
        for path, operations in OPENAPI["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    ]
    assert authorized
    for path, method, operation in authorized:
        response = _resolve(operation["responses"]["401"])
        schema = response["content"]["application/json"]["schema"]
        assert _accepts(schema, body), (method, path)


def test_every_handler_is_imported_in_one_thread_before_the_server_answers(
    monkeypatch: pytest.MonkeyPatch, ddb_local: dynamodb_local.DynamoDBLocal
) -> None:
    """The stream poller and a first request imported handlers from two threads at once:
    `cannot import name ... from partially initialized module`."""
    seen: dict[str, Any] = {}

    class Running:
        port, endpoint = ddb_local.port, ddb_local.endpoint

        def client(self) -> Any:
            return ddb_local.client()

        def stop(self) -> None:
            seen["stopped"] = True

    def pollers(server: DevServer, endpoint: str) -> list[Any]:
        seen["imported_before_pollers"] = all(
            f._handler is not None for f in server.functions.values()
        )
        return []

    def serve(server: DevServer, poll_interval: float = 0.5) -> None:
        seen["imported_before_serving"] = all(
            f._handler is not None for f in server.functions.values()
        )
        seen["thread"] = threading.current_thread()
        raise KeyboardInterrupt

    monkeypatch.setattr(dynamodb_local, "start", lambda **_: Running())
    monkeypatch.setattr(dynamodb_local, "create_tables", lambda client: None)
    monkeypatch.setattr(devserver, "port_in_use", lambda port: False)
    monkeypatch.setattr(DevServer, "start_stream_pollers", pollers)
    monkeypatch.setattr(DevServer, "start_schedules", lambda server: [])
    monkeypatch.setattr(DevServer, "serve_forever", serve)
    # Free ports only: the test must pass while `make dev` holds 3000 and 3030.
    assert devserver.main(["--port", "0", "--ws-port", "0"]) == 0
    assert seen["imported_before_pollers"] is True
    assert seen["imported_before_serving"] is True
    assert seen["thread"] is threading.main_thread()


class _Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logged() -> Any:
    """The JSON records the functions' one Logger writes, formatted as on AWS."""
    from token_billing.core.observability import logger

    collected = _Collected()
    collected.setFormatter(logger.registered_formatter)
    stdlib_logger = logging.getLogger(logger.name)
    stdlib_logger.addHandler(collected)
    yield lambda: [json.loads(line) for line in collected.lines]
    stdlib_logger.removeHandler(collected)


def test_each_function_logs_under_its_own_service_in_the_dev_server(
    server: DevServer, logged: Any
) -> None:
    """Every function shares the dev server's one Logger; all of them logged as the last
    template function's service (`reconcile`)."""
    use_local_stripe(server)
    server.functions["DebitFunction"].invoke({"customer_id": "cust_nobody", "op": "x"})
    server.functions["WebhookFunction"].invoke(stripe_events.webhook_request(b"{}"))
    records = logged()
    by_message = {record["message"]: record["service"] for record in records}
    assert by_message["refused"] == "debit"
    assert by_message["webhook refused"] == "webhook"


def test_no_keys_leak_from_one_invocation_into_the_next(server: DevServer, logged: Any) -> None:
    """The webhook appends the Stripe event's id and type; they showed up in the logs of
    later, unrelated invocations."""
    import debit_handler
    import webhook_handler

    use_local_stripe(server)
    body = stripe_events.event_body("customer.created", {"id": "cus_1"}, event_id="evt_leak")
    reply = webhook_handler.lambda_handler(stripe_events.webhook_request(body), FakeLambdaContext())
    assert reply["statusCode"] == 200, reply
    debit_handler.lambda_handler({"op": "nope"}, FakeLambdaContext())
    records = logged()
    applied = next(r for r in records if r["message"] == "webhook applied")
    refused = next(r for r in records if r["message"] == "refused")
    assert applied["stripe_event_id"] == "evt_leak"
    assert "stripe_event_id" not in refused
    assert "stripe_event_type" not in refused


def test_nothing_happened_prints_no_metric_line_and_no_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The sweeper (and the stream poller) printed all-zero EMF lines every run, and every
    plain GET warned "No application metrics to publish"."""
    import holds_sweeper_handler
    import packages_handler

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        holds_sweeper_handler.lambda_handler(
            load_event("holds_sweeper/scheduled.json"), FakeLambdaContext()
        )
        packages_handler.lambda_handler(
            load_event("packages/list-packages.json"), FakeLambdaContext()
        )
    assert not [w for w in caught if "metrics" in str(w.message)]
    out = capsys.readouterr().out
    assert '"_aws"' not in out, out


def _emf_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_each_function_emits_its_metrics_under_its_own_service_in_the_dev_server(
    server: DevServer, ledger: Ledger, customer_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 22: the debit function's TokensDebitedMt came out under `service: realtime`
    (the shared Metrics took the last function's service from the environment at import)."""
    fund(ledger, customer_id, 5_000_000)
    capsys.readouterr()
    reply = server.functions["DebitFunction"].invoke(
        {
            "customer_id": customer_id,
            "idempotency_key": "metrics-1",
            "usage": [{"action": "api_call", "quantity": 3}],
        }
    )
    assert reply["ok"] is True, reply
    (line,) = [m for m in _emf_lines(capsys.readouterr().out) if "TokensDebitedMt" in m]
    assert line["service"] == "debit"
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "TokenBilling"


def test_concurrent_invocations_flush_only_their_own_metrics(
    server: DevServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two functions running at once in the dev server (the debit and the holds sweeper: the
    HTTP API's functions take turns): each one's line holds its metric only, under its
    service (they shared one metric set, flushed by whichever ended first)."""
    from token_billing.core.observability import count, publish_metrics

    both_recorded = threading.Barrier(2, timeout=10)

    def recording(metric: str) -> Any:
        @publish_metrics
        def handler(event: Any, context: Any) -> None:
            count(metric, 1)
            both_recorded.wait()

        return handler

    for function, metric in (("DebitFunction", "MetricA"), ("HoldsSweeperFunction", "MetricB")):
        server.functions[function].handler()  # its cold start: per-function observability
        monkeypatch.setattr(server.functions[function], "_handler", recording(metric))
    capsys.readouterr()
    threads = [
        threading.Thread(target=server.functions[name].invoke, args=({},))
        for name in ("DebitFunction", "HoldsSweeperFunction")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    lines = _emf_lines(capsys.readouterr().out)
    services = {line["service"]: {k for k in line if k.startswith("Metric")} for line in lines}
    assert services == {"debit": {"MetricA"}, "holds-sweeper": {"MetricB"}}
