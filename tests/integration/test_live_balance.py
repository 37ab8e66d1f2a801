"""The live balance end to end on DynamoDB Local and the dev server: a real WebSocket client
(`websockets`), the template's authorizer and route function behind it, the ledger stream
polled into the stream function, and its PostToConnection through boto3 to the dev server's
Management API. Nothing is called in-process that AWS would call over the network.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from local import dynamodb_local, identity
from local.devserver import DevServer, build_server
from local.websocket import local_environment
from tests.integration.helpers import dev_server_client, fund, http_json, use_local_stripe
from token_billing.domain.live_balance import push_account_changes
from token_billing.edge import socket_auth
from token_billing.integrations import websocket_push
from token_billing.store.connections import Connections
from token_billing.store.ledger import Ledger
from token_billing.store.stream_images import AccountChange

pytestmark = pytest.mark.integration

SUBPROTOCOL = "token-billing.v1"
DELIVERY_S = 2.0  # the bound: a message within 2 s of the change
QUIET_S = 1.5  # how long "nothing arrives" is watched for


@pytest.fixture(scope="module")
def server(ddb_local: dynamodb_local.DynamoDBLocal) -> Iterator[DevServer]:
    """A dev server of this module's own, with the stream poller and the WebSocket API.

    Its threads invoke handlers between tests too (a $disconnect, a stream batch), so the
    environment pointing them at DynamoDB Local and the dev server is set for the whole
    module, before any test's own environment is saved, and restored after they stopped.
    """
    import os
    import threading

    saved = dict(os.environ)
    server = build_server("127.0.0.1", 0)
    os.environ.update(dynamodb_local.local_aws_environment(ddb_local.endpoint))
    os.environ.update(local_environment(server.url))
    os.environ.update(
        TABLE_NAME="LedgerTable",
        AWS_ENDPOINT_URL_EVENTBRIDGE=server.url,
        EVENT_BUS_NAME="TokenBillingEventBus",
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    server.fake_events.log_path = None
    server.fake_events.echo = False
    server.start_websocket_api(0)
    server.start_stream_pollers(ddb_local.endpoint)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()  # stops the pollers and the socket API, waits for $disconnect
        thread.join(timeout=5)
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def socket_env(server: DevServer, local_aws: None) -> None:
    socket_auth.default_verifier.cache_clear()
    websocket_push.management_client.cache_clear()


@pytest.fixture
def connections(ddb_local: dynamodb_local.DynamoDBLocal) -> Connections:
    return Connections(ddb_local.client(), "LedgerTable")


def open_socket(server: DevServer, token: str, *, query: str = "") -> ClientConnection:
    assert server.websocket_api is not None
    return connect(
        f"{server.websocket_api.url}/{query}",
        subprotocols=[SUBPROTOCOL, token],  # type: ignore[list-item]
        open_timeout=10,
    )


def watch(server: DevServer, customer_id: str) -> ClientConnection:
    socket = open_socket(server, identity.mint(customer_id=customer_id))
    assert socket.subprotocol == SUBPROTOCOL
    return socket


def next_balance(socket: ClientConnection, timeout_s: float = DELIVERY_S) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(socket.recv(timeout=timeout_s))
    assert message["type"] == "balance", message
    return message


def balance_after(socket: ClientConnection, balance_mt: int) -> dict[str, Any]:
    """The first message showing `balance_mt`, within the 2 s bound from now."""
    deadline = time.monotonic() + DELIVERY_S
    while True:
        message = next_balance(socket, max(0.01, deadline - time.monotonic()))
        if message["balance_mt"] == balance_mt:
            return message


def drain(socket: ClientConnection) -> None:
    """Drop what the funding write sent, so a test reads only its own change."""
    while True:
        try:
            socket.recv(timeout=0.8)
        except TimeoutError:
            return


def invoke_debit(server: DevServer, payload: dict[str, Any]) -> dict[str, Any]:
    client = dev_server_client("lambda", server, read_timeout_s=10)
    reply = client.invoke(FunctionName="DebitFunction", Payload=json.dumps(payload))
    result: dict[str, Any] = json.load(reply["Payload"])
    assert result.get("ok") is True, result
    return result


def debit(server: DevServer, customer_id: str, quantity: int = 5) -> dict[str, Any]:
    return invoke_debit(
        server,
        {
            "customer_id": customer_id,
            "idempotency_key": f"live-{uuid.uuid4().hex}",
            "usage": [{"action": "vm_runtime", "quantity": quantity}],
        },
    )


def assert_silent(socket: ClientConnection) -> None:
    with pytest.raises(TimeoutError):
        socket.recv(timeout=QUIET_S)


# ---- what a watcher receives ----------------------------------------------------------


def test_a_debit_through_the_invoke_api_reaches_its_customer_within_2_s_and_no_one_else(
    server: DevServer, ledger: Ledger
) -> None:
    customer_a, customer_b = (f"cust_live_{uuid.uuid4().hex[:10]}" for _ in range(2))
    fund(ledger, customer_a, 1_000_000)
    fund(ledger, customer_b, 1_000_000)
    with watch(server, customer_a) as socket_a, watch(server, customer_b) as socket_b:
        drain(socket_a)
        drain(socket_b)
        started = time.monotonic()
        debit(server, customer_a, quantity=5)  # vm_runtime: 1 token a minute
        message = balance_after(socket_a, 995_000)
        assert time.monotonic() - started < DELIVERY_S
        assert message == {
            "type": "balance",
            "customer_id": customer_a,
            "balance": "995",
            "balance_mt": 995_000,
            "available": "995",
            "available_mt": 995_000,
            "held": "0",
            "held_mt": 0,
            "low_balance": False,
            "version": message["version"],
            "at": message["at"],
        }
        assert isinstance(message["version"], int)
        assert message["version"] >= 2
        assert_silent(socket_b)  # B hears nothing of A's debit


def test_a_hold_shows_as_held_tokens(server: DevServer, ledger: Ledger, customer_id: str) -> None:
    fund(ledger, customer_id, 1_000_000)
    with watch(server, customer_id) as socket:
        drain(socket)
        invoke_debit(
            server,
            {
                "op": "hold",
                "customer_id": customer_id,
                "hold_id": f"hold-{uuid.uuid4().hex[:12]}",
                "amount": 600,
                "expires_in_s": 900,
                "vm_id": "vm-1",
            },
        )
        # The funding write's own push may still arrive late on a loaded machine: the
        # hold's is the first that shows held tokens.
        deadline = time.monotonic() + DELIVERY_S
        message = next_balance(socket)
        while message["held_mt"] == 0:
            message = next_balance(socket, max(0.01, deadline - time.monotonic()))
        assert (message["balance_mt"], message["held_mt"], message["available_mt"]) == (
            1_000_000,
            600_000,
            400_000,
        )
        assert message["low_balance"] is True  # 400 tokens available: under the 500 line
        assert message["held"] == "600"


def test_a_webhook_credit_from_the_offline_checkout_reaches_the_watcher(
    server: DevServer, ledger: Ledger, customer_id: str
) -> None:
    use_local_stripe(server)
    token = identity.mint(customer_id=customer_id)
    with watch(server, customer_id) as socket:
        status, order = http_json(
            server.url,
            "POST",
            f"/api/v1/customers/{customer_id}/tokens/purchase",
            {"package_id": "growth"},
            token=token,
        )
        assert status == 200, order
        pay = urllib.request.Request(  # noqa: S310 - the dev server on loopback
            f"{server.url}/_local/checkout/{order['session_id']}/pay", data=b"", method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as redirect:
            urllib.request.build_opener(NoRedirect).open(pay, timeout=10)
        assert redirect.value.code == 303
        message = balance_after(socket, 6_500_000)
        assert message["available"] == "6500"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_messages_arrive_in_version_order(
    server: DevServer, ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 1_000_000)
    with watch(server, customer_id) as socket:
        drain(socket)
        for _ in range(5):
            debit(server, customer_id, quantity=1)
        versions: list[int] = []
        balances: list[int] = []
        while not balances or balances[-1] != 995_000:
            message = next_balance(socket, timeout_s=DELIVERY_S)
            versions.append(message["version"])
            balances.append(message["balance_mt"])
        assert versions == sorted(versions)
        assert len(set(versions)) == len(versions)
        assert balances == sorted(balances, reverse=True)


def test_an_admin_may_watch_a_named_customer(
    server: DevServer, ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 1_000_000)
    admin = identity.mint(admin=True)
    with open_socket(server, admin, query=f"?customer_id={customer_id}") as socket:
        drain(socket)
        debit(server, customer_id, quantity=2)
        assert balance_after(socket, 998_000)["customer_id"] == customer_id


def test_default_route_answers_pong(server: DevServer, customer_id: str) -> None:
    with watch(server, customer_id) as socket:
        socket.send('{"action":"ping"}')
        assert json.loads(socket.recv(timeout=DELIVERY_S)) == {"type": "pong"}


def test_a_client_pinging_in_a_loop_runs_no_function_and_starves_nobody(
    server: DevServer, ledger: Ledger, customer_id: str
) -> None:
    """`$default` is API Gateway's own mock under its own route throttle (5 a second, burst
    10, from template.yaml): a looping client gets "Too Many Requests" frames, no function
    runs for any of its messages, and another customer still connects and hears its
    balance."""
    invoked: list[str] = []
    real_invoke = server.websocket_api._invoke  # type: ignore[union-attr]

    def counting(function: str, event: Any) -> Any:
        invoked.append(event["requestContext"]["routeKey"])
        return real_invoke(function, event)

    server.websocket_api._invoke = counting  # type: ignore[union-attr]
    other = f"{customer_id}-other"
    fund(ledger, other, 1_000_000)
    with watch(server, customer_id) as looping:
        started = time.monotonic()
        for _ in range(60):  # as fast as the socket takes them: a loop, not a keep-alive
            looping.send("ping")
        replies = [json.loads(looping.recv(timeout=DELIVERY_S)) for _ in range(60)]
        elapsed_s = time.monotonic() - started
        pongs = [reply for reply in replies if reply == {"type": "pong"}]
        throttled = [reply for reply in replies if reply.get("message") == "Too Many Requests"]
        assert len(pongs) + len(throttled) == 60
        # At most the burst (the bucket is the stage's, shared with the other tests' pings)
        # and what 5 a second refilled meanwhile; the rest is throttled.
        assert 1 <= len(pongs) <= 10 + 5 * elapsed_s + 1, (len(pongs), elapsed_s)
        assert throttled
        with watch(server, other) as bystander:
            drain(bystander)
            debit(server, other, quantity=2)
            assert balance_after(bystander, 998_000)["customer_id"] == other
    assert "$default" not in invoked
    assert "$connect" in invoked  # the same counter sees the routes that do run a function


# ---- finding the watchers: one batched read per stream batch ---------------------------


def counted(ddb_local: dynamodb_local.DynamoDBLocal) -> tuple[Connections, Counter[str]]:
    """Connections on a client of their own (the dev server's stream poller shares the
    runtime's), with every DynamoDB request it sends counted by operation."""
    client = ddb_local.client()
    sent: Counter[str] = Counter()

    def before_call(model: Any, **_: Any) -> None:
        sent[model.name] += 1

    client.meta.events.register("before-call.dynamodb", before_call)
    return Connections(client, "LedgerTable"), sent


def account_change(customer_id: str, version: int) -> AccountChange:
    return AccountChange(
        customer_id=customer_id,
        version=version,
        updated_at="2026-12-01T10:00:00.000000Z",
        old_balance_mt=1_001_000,
        balance_mt=1_000_000,
        available_mt=1_000_000,
        usage_delta_mt=MappingProxyType({}),
    )


def test_a_batch_of_customers_nobody_watches_costs_one_batch_get_item_and_no_query(
    ddb_local: dynamodb_local.DynamoDBLocal,
) -> None:
    connections, sent = counted(ddb_local)
    run = uuid.uuid4().hex[:8]
    changes = [account_change(f"cust_idle_{run}_{n}", v) for n in range(60) for v in (1, 2)]

    def never(connection_id: str, data: bytes) -> bool:
        raise AssertionError(f"posted to {connection_id}")

    outcome = push_account_changes(changes, connections=connections, send=never)
    assert dict(sent) == {"BatchGetItem": 1}
    assert (outcome.customers_changed, outcome.watch_reads, outcome.customers_looked_up) == (
        60,
        1,
        0,
    )
    assert (outcome.messages_sent, outcome.lookup_failures, outcome.errors) == (0, 0, [])


def test_only_the_watched_customer_of_a_batch_is_queried(
    server: DevServer, ddb_local: dynamodb_local.DynamoDBLocal, customer_id: str
) -> None:
    """A socket's $connect (through the dev server) puts the marker the batched read finds."""
    connections, sent = counted(ddb_local)
    idle = [f"{customer_id}_idle{n}" for n in range(5)]
    with watch(server, customer_id):
        assert wait_for(lambda: connections.watched([customer_id]).customers == {customer_id})
        sent.clear()
        posted: list[str] = []

        def send(connection_id: str, data: bytes) -> bool:
            posted.append(connection_id)
            return True

        outcome = push_account_changes(
            [account_change(c, 1) for c in [*idle, customer_id]], connections=connections, send=send
        )
    assert dict(sent) == {"BatchGetItem": 1, "Query": 1}
    assert (outcome.customers_looked_up, len(posted)) == (1, 1)


def test_a_watched_customer_among_busy_unwatched_ones_hears_within_2_s(
    server: DevServer, ledger: Ledger, customer_id: str
) -> None:
    idle = [f"{customer_id}_idle{n}" for n in range(5)]
    for customer in [customer_id, *idle]:
        fund(ledger, customer, 1_000_000)
    with watch(server, customer_id) as socket:
        drain(socket)
        for customer in idle:
            debit(server, customer, quantity=3)
        started = time.monotonic()
        debit(server, customer_id, quantity=4)
        balance_after(socket, 996_000)
        assert time.monotonic() - started < DELIVERY_S


# ---- connections: recorded, cleaned up ------------------------------------------------


def wait_for(check: Callable[[], bool], timeout_s: float = DELIVERY_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def test_a_closed_connection_is_deleted_on_disconnect(
    server: DevServer, connections: Connections, customer_id: str
) -> None:
    with watch(server, customer_id):
        assert wait_for(lambda: len(connections.of_customer(customer_id)) == 1)
        (item,) = connections.of_customer(customer_id)
        assert 7_190 <= item.expires_at_epoch - item.connected_at_epoch <= 7_200
    assert wait_for(lambda: connections.of_customer(customer_id) == [])


def test_a_gone_connection_is_deleted_when_the_push_meets_410(
    server: DevServer, ledger: Ledger, connections: Connections, customer_id: str
) -> None:
    """A connection whose $disconnect never ran (API Gateway lost it): the push's
    GoneException deletes its item; a live one beside it still gets the message."""
    fund(ledger, customer_id, 1_000_000)
    connections.add(customer_id=customer_id, connection_id="gone-conn-1", subject="test")
    with watch(server, customer_id) as socket:
        drain(socket)
        debit(server, customer_id, quantity=1)
        balance_after(socket, 999_000)

        def ids() -> list[str]:
            return [c.connection_id for c in connections.of_customer(customer_id)]

        assert wait_for(lambda: "gone-conn-1" not in ids())
        assert len(ids()) == 1  # the live one stays


def test_management_api_answers_gone_for_an_unknown_connection(server: DevServer) -> None:
    client = dev_server_client("apigatewaymanagementapi", server, read_timeout_s=5)
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId="no-such-connection", Data=b"{}")


# ---- the authorizer, before the connection is accepted --------------------------------


def refused_status(server: DevServer, token: str | None, *, query: str = "") -> int:
    assert server.websocket_api is not None
    url = f"{server.websocket_api.url}/{query}"
    protocols = [SUBPROTOCOL, token] if token else None
    with pytest.raises(InvalidStatus) as refused:
        connect(url, subprotocols=protocols, open_timeout=10)  # type: ignore[arg-type]
    return refused.value.response.status_code


def forged(customer_id: str, **claims: Any) -> str:
    """Signed by another key under the dev key's `kid`."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return identity.mint(customer_id=customer_id, claims=claims, key=other)


def signed(customer_id: str, **claims: Any) -> str:
    return identity.mint(customer_id=customer_id, claims=claims)


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("missing", 401),
        ("forged", 401),
        ("expired", 401),
        ("wrong audience", 401),
        ("wrong issuer", 401),
        ("another customer's id", 403),
        ("admin naming nobody", 403),
    ],
)
def test_bad_tokens_are_refused_before_the_connection_opens(
    server: DevServer, connections: Connections, customer_id: str, case: str, status: int
) -> None:
    now = int(time.time())
    token: str | None
    query = ""
    if case == "missing":
        token = None
    elif case == "forged":
        token = forged(customer_id)
    elif case == "expired":
        token = signed(customer_id, iat=now - 7200, exp=now - 60)
    elif case == "wrong audience":
        token = signed(customer_id, aud="someone-else")
    elif case == "wrong issuer":
        token = signed(customer_id, iss="https://issuer.example.com")
    elif case == "another customer's id":
        token = signed(customer_id)
        query = "?customer_id=cust_someone_else"
    else:
        token = identity.mint(admin=True)
    assert refused_status(server, token, query=query) == status
    assert connections.of_customer(customer_id) == []  # nothing recorded


def test_a_token_in_the_query_string_connects_too(server: DevServer, customer_id: str) -> None:
    token = identity.mint(customer_id=customer_id)
    assert server.websocket_api is not None
    with connect(f"{server.websocket_api.url}/?token={token}", open_timeout=10) as socket:
        socket.send("ping")
        assert json.loads(socket.recv(timeout=DELIVERY_S)) == {"type": "pong"}


def test_the_sample_route_events_run_on_dynamodb_local(connections: Connections) -> None:
    """events/realtime/ (what `sam local invoke -e` takes) through the route function."""
    import realtime_handler

    from tests.conftest import fake_context, load_event

    connect = realtime_handler.lambda_handler(load_event("realtime/connect.json"), fake_context())
    assert connect["statusCode"] == 200
    assert [c.connection_id for c in connections.of_customer("cust_demo")] == ["KmVfncfFoAMCIhw="]
    realtime_handler.lambda_handler(load_event("realtime/disconnect.json"), fake_context())
    assert connections.of_customer("cust_demo") == []
