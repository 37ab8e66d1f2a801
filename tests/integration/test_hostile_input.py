"""Hostile input at every entry (issue 16): non-JSON and binary bodies, wrong content types,
deep and huge JSON, numbers past any range, NUL and control characters in ids and keys,
oversized headers and query strings, on every HTTP route, the webhook and every Invoke op.
Each gets a clear 4xx (or `ok: false`) and changes nothing."""

from __future__ import annotations

import contextlib
import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from local import identity
from local.devserver import DevServer
from tests.conftest import FakeLambdaContext
from tests.integration.helpers import assert_consistent, fund, use_local_stripe
from token_billing.store.ledger import Ledger

DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE = b'{"usage": [' + b'{"action": "api_call", "quantity": 1},' * 60_000 + b"{}]}"
BODIES: dict[str, tuple[bytes, str]] = {
    "binary": (bytes(range(256)), "application/octet-stream"),
    "not json": (b"amount=5&reason=free", "application/json"),
    "wrong content type": (b'{"amount": "5", "reason": "promo"}', "text/plain"),
    "form content type": (b"amount=5&reason=promo", "application/x-www-form-urlencoded"),
    "deep json": (DEEP, "application/json"),
    "huge json": (HUGE, "application/json"),
    "number past any range": (
        b'{"amount": 1e999, "reason": "x", "package_id": 1e999, "usage": [{"action":'
        b' "api_call", "quantity": 1e999}], "period": "month"}',
        "application/json",
    ),
    "NaN": (
        b'{"amount": NaN, "usage": [{"action": "api_call", "quantity": NaN}]}',
        "application/json",
    ),
    "NUL in strings": (
        b'{"amount": "5", "reason": "a\\u0000b", "package_id": "starter\\u0000", '
        b'"usage": [{"action": "api_call\\u0000", "quantity": 1}], "period": "month"}',
        "application/json",
    ),
}


def send(
    server: DevServer, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        # The server may answer before reading it all: its answer is still there.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def server(dev_server: DevServer) -> DevServer:
    return dev_server


@pytest.fixture
def funded(server: DevServer, ledger: Ledger, customer_id: str) -> str:
    use_local_stripe(server)
    fund(ledger, customer_id, 5_000_000)
    return customer_id


def routes_with(server: DevServer, customer: str) -> list[tuple[str, str]]:
    return [(route.method, route.path.replace("{id}", customer)) for route in server.routes]


@pytest.mark.parametrize("case", BODIES)
def test_hostile_bodies_on_every_route_are_a_clear_4xx(
    case: str, server: DevServer, ledger: Ledger, funded: str
) -> None:
    before = assert_consistent(ledger, funded)
    body, content_type = BODIES[case]
    admin = identity.mint(admin=True)
    for method, path in routes_with(server, funded):
        headers = {
            "Content-Type": content_type,
            "Authorization": f"Bearer {admin}",
            "Idempotency-Key": "hostile-1",
            "Stripe-Signature": "t=1,v1=00",
        }
        status, reply = send(server, method, path, body, headers)
        assert 200 <= status < 500, (case, method, path, status, reply[:200])
        if method in ("POST", "PUT"):
            assert 400 <= status < 500, (case, method, path, status, reply[:200])
            error = json.loads(reply)["error"]
            assert error["code"] == "invalid_request", (case, path, error)
            assert error["message"], (case, path)
    assert assert_consistent(ledger, funded) == before
    assert len(list(ledger.iter_entries(funded))) == 1


@pytest.mark.parametrize(
    "bad_id",
    ["cust%00x", "cust%0A", "cust%0D%0Ax", "%E2%80%AEcust", "c" * 65, "..%2F..%2Fetc", "%FF%FE"],
)
def test_nul_and_control_characters_in_path_ids_are_refused(
    bad_id: str, server: DevServer, ledger: Ledger, funded: str
) -> None:
    admin = identity.mint(admin=True)
    for method, path in routes_with(server, bad_id):
        if "{" in path or "/customers/" not in path:
            continue
        body = b'{"amount": "5", "reason": "promo", "package_id": "starter"}'
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {admin}",
            "Idempotency-Key": "hostile-2",
        }
        status, reply = send(server, method, path, body, headers)
        assert status in (400, 404), (bad_id, method, path, status, reply[:200])


@pytest.mark.parametrize(
    "header", ["Idempotency-Key", "Authorization", "X-Padding", "Stripe-Signature"]
)
def test_oversized_headers_and_query_strings_are_a_4xx(
    header: str, server: DevServer, ledger: Ledger, funded: str
) -> None:
    before = assert_consistent(ledger, funded)
    admin = identity.mint(admin=True)
    for method, path in routes_with(server, funded):
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {admin}"}
        headers[header] = "x" * 70_000
        status, _ = send(server, method, path, b"", headers)
        assert 400 <= status < 500, (header, method, path, status)
        status, _ = send(server, method, f"{path}?cursor={'A' * 70_000}", b"", headers)
        assert 400 <= status < 500, (method, path, status)
    assert assert_consistent(ledger, funded) == before


def invoke(payload: Any) -> dict[str, Any]:
    import debit_handler

    reply: dict[str, Any] = debit_handler.lambda_handler(payload, FakeLambdaContext())
    return reply


def invoke_cases(customer: str) -> dict[str, Any]:
    line = {"action": "api_call", "quantity": 1}
    base = {"customer_id": customer, "idempotency_key": "k-1", "usage": [line]}
    hold = {
        "op": "hold",
        "customer_id": customer,
        "hold_id": "h-1",
        "amount": 1,
        "expires_in_s": 600,
    }
    deep: Any = []
    for _ in range(5_000):
        deep = [deep]
    return {
        "not an object": [1, 2, 3],
        "a string": "debit",
        "null": None,
        "op not a string": {**base, "op": ["debit"]},
        "newline after the customer": {**base, "customer_id": customer + "\n"},
        "newline after the key": {**base, "idempotency_key": "k-1\n"},
        "NUL in the key": {**base, "idempotency_key": "k\x00-1"},
        "NUL in a vm id": {**base, "usage": [{**line, "vm_id": "vm\x00"}]},
        "control character in the action": {**base, "usage": [{**line, "action": "api_call\x07"}]},
        "quantity past any range": {**base, "usage": [{**line, "quantity": 10**400}]},
        "quantity NaN": {**base, "usage": [{**line, "quantity": float("nan")}]},
        "quantity infinite": {**base, "usage": [{**line, "quantity": float("inf")}]},
        "quantity a bool": {**base, "usage": [{**line, "quantity": True}]},
        "deep usage": {**base, "usage": deep},
        "too many lines": {**base, "usage": [line] * 1_001},
        "huge key": {**base, "idempotency_key": "k" * 100_000},
        "hold amount past any range": {**hold, "amount": 10**400},
        "hold expiry past any range": {**hold, "expires_in_s": 10**400},
        "hold id with newline": {**hold, "hold_id": "h-1\n"},
        "settle of a NUL hold": {
            "op": "settle",
            "customer_id": customer,
            "hold_id": "\x00",
            "usage": [line],
        },
        "renew to itself": {
            "op": "renew",
            "customer_id": customer,
            "hold_id": "h-1",
            "next_hold_id": "h-1",
            "usage": [line],
            "amount": 1,
            "expires_in_s": 600,
        },
        "release with a deep id": {"op": "release", "customer_id": customer, "hold_id": deep},
    }


def test_every_invoke_op_refuses_hostile_payloads_and_changes_nothing(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 5_000_000)
    before = assert_consistent(ledger, customer_id)
    for case, payload in invoke_cases(customer_id).items():
        reply = invoke(payload)
        assert reply["ok"] is False, case
        assert reply["error"]["code"] in ("invalid_request", "hold_not_found"), (case, reply)
        assert reply["error"]["retryable"] is False, case
        assert len(reply["error"]["message"]) < 500, case  # never echoes the input back
    assert assert_consistent(ledger, customer_id) == before
    assert len(list(ledger.iter_entries(customer_id))) == 1


def test_a_hostile_webhook_body_is_a_400_before_anything_is_read(
    server: DevServer, ledger: Ledger
) -> None:
    import webhook_handler

    use_local_stripe(server)
    from tests import stripe_events

    for body in (DEEP, bytes(range(256)), b"\x00" * 10, b"{" * 10_000):
        event = stripe_events.webhook_request(body)
        reply = webhook_handler.lambda_handler(event, FakeLambdaContext())
        assert reply["statusCode"] == 400, body[:20]
