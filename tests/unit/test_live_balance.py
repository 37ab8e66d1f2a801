"""The live balance push, with the connections and the sending as fakes: one batched watch
lookup per batch, a connections lookup per watched customer only, messages in version
order, gone connections deleted, failures counted and never raised. Then the store on moto:
the requests one batch sends, counted."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pytest

from token_billing.domain.live_balance import (
    MAX_MESSAGES_PER_CUSTOMER_PER_BATCH,
    balance_message,
    push_account_changes,
)
from token_billing.store.connections import (
    BATCH_GET_MAX_KEYS,
    CONNECTION_TTL_S,
    UNPROCESSED_RETRIES,
    Connections,
    Watched,
)
from token_billing.store.stream_images import AccountChange


def change(customer_id: str, version: int, balance_mt: int, held_mt: int = 0) -> AccountChange:
    return AccountChange(
        customer_id=customer_id,
        version=version,
        updated_at=f"2026-12-01T10:00:{version % 60:02d}.000000Z",
        old_balance_mt=balance_mt + 1000,
        balance_mt=balance_mt,
        available_mt=balance_mt - held_mt,
        usage_delta_mt=MappingProxyType({}),
        held_mt=held_mt,
    )


@dataclass(frozen=True)
class Conn:
    connection_id: str


@dataclass
class FakeConnections:
    """A customer is watched when it has connections here (its marker is written with them),
    or when listed in `stale_markers` (a marker outliving its sockets)."""

    by_customer: dict[str, list[str]]
    lookups: list[str] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    stale_markers: set[str] = field(default_factory=set)
    unread: set[str] = field(default_factory=set)
    watch_calls: list[list[str]] = field(default_factory=list)
    watch_fails: bool = False

    def watched(self, customer_ids: Collection[str]) -> Watched:
        self.watch_calls.append(sorted(customer_ids))
        if self.watch_fails:
            raise RuntimeError("throttled")
        marked = set(self.by_customer) | self.stale_markers
        asked = set(customer_ids)
        return Watched(frozenset((asked & marked) - self.unread), frozenset(asked & self.unread), 1)

    def of_customer(self, customer_id: str) -> list[Conn]:
        self.lookups.append(customer_id)
        if customer_id in self.failing:
            raise RuntimeError("throttled")
        return [Conn(c) for c in self.by_customer.get(customer_id, [])]

    def remove(self, *, customer_id: str, connection_id: str) -> None:
        self.removed.append((customer_id, connection_id))


@dataclass
class FakeSender:
    gone: set[str] = field(default_factory=set)
    broken: set[str] = field(default_factory=set)
    sent: list[tuple[str, bytes]] = field(default_factory=list)

    def __call__(self, connection_id: str, data: bytes) -> bool:
        if connection_id in self.broken:
            raise TimeoutError("read timeout")
        if connection_id in self.gone:
            return False
        self.sent.append((connection_id, data))
        return True


def test_the_message_carries_every_field_as_exact_integers_and_decimals() -> None:
    assert balance_message(change("cust_a", 7, 1_999_900, held_mt=600_000)) == {
        "type": "balance",
        "customer_id": "cust_a",
        "balance": "1999.9",
        "balance_mt": 1_999_900,
        "available": "1399.9",
        "available_mt": 1_399_900,
        "held": "600",
        "held_mt": 600_000,
        "low_balance": False,
        "version": 7,
        "at": "2026-12-01T10:00:07.000000Z",
    }
    assert balance_message(change("cust_a", 8, 499_999))["low_balance"] is True


def test_one_watch_lookup_per_batch_and_connections_of_watched_customers_only() -> None:
    connections = FakeConnections({"cust_a": ["c1"]})
    send = FakeSender()
    changes = [change("cust_a", v, 1_000_000 - v) for v in range(1, 6)]
    changes += [change("cust_nobody", v, 5_000) for v in range(1, 50)]
    outcome = push_account_changes(changes, connections=connections, send=send)
    assert connections.watch_calls == [["cust_a", "cust_nobody"]]
    assert connections.lookups == ["cust_a"]
    assert (outcome.customers_changed, outcome.watch_reads) == (2, 1)
    assert outcome.customers_looked_up == 1
    assert outcome.messages_sent == 5
    assert [data.count(b'"version":') for _, data in send.sent] == [1] * 5


def test_nobody_watching_costs_the_one_watch_lookup_and_nothing_else() -> None:
    connections = FakeConnections({})
    send = FakeSender()
    changes = [change(f"cust_{n}", 1, 5_000) for n in range(40)]
    outcome = push_account_changes(changes, connections=connections, send=send)
    assert len(connections.watch_calls) == 1
    assert len(connections.watch_calls[0]) == 40
    assert (connections.lookups, send.sent, outcome.customers_looked_up) == ([], [], 0)
    assert (outcome.lookup_failures, outcome.errors) == (0, [])


def test_a_stale_marker_costs_a_query_and_sends_nothing() -> None:
    connections = FakeConnections({}, stale_markers={"cust_a"})
    send = FakeSender()
    outcome = push_account_changes([change("cust_a", 1, 5)], connections=connections, send=send)
    assert connections.lookups == ["cust_a"]
    assert (outcome.messages_sent, send.sent) == (0, [])


def test_a_failed_watch_lookup_is_counted_never_raised_and_sends_nothing() -> None:
    connections = FakeConnections({"cust_a": ["c1"]}, watch_fails=True)
    send = FakeSender()
    outcome = push_account_changes([change("cust_a", 1, 5)], connections=connections, send=send)
    assert (outcome.lookup_failures, connections.lookups, send.sent) == (1, [], [])
    assert "watch markers" in outcome.errors[0]


def test_unread_markers_are_failures_of_those_customers_only() -> None:
    connections = FakeConnections({"cust_a": ["a1"], "cust_b": ["b1"]}, unread={"cust_b"})
    send = FakeSender()
    outcome = push_account_changes(
        [change("cust_a", 1, 5), change("cust_b", 1, 5)], connections=connections, send=send
    )
    assert connections.lookups == ["cust_a"]
    assert [c for c, _ in send.sent] == ["a1"]
    assert outcome.lookup_failures == 1


def test_messages_go_out_in_version_order_even_when_the_batch_is_not() -> None:
    connections = FakeConnections({"cust_a": ["c1", "c2"]})
    send = FakeSender()
    changes = [change("cust_a", v, 1000 * v) for v in (3, 1, 2, 2)]
    push_account_changes(changes, connections=connections, send=send)
    for connection_id in ("c1", "c2"):
        versions = [json.loads(d)["version"] for c, d in send.sent if c == connection_id]
        assert versions == [1, 2, 3]


def test_a_burst_sends_only_the_newest_few() -> None:
    connections = FakeConnections({"cust_a": ["c1"]})
    send = FakeSender()
    changes = [change("cust_a", v, 1000 * v) for v in range(1, 101)]
    outcome = push_account_changes(changes, connections=connections, send=send)
    assert outcome.messages_sent == MAX_MESSAGES_PER_CUSTOMER_PER_BATCH
    assert outcome.changes_skipped == 100 - MAX_MESSAGES_PER_CUSTOMER_PER_BATCH
    assert b'"version":100' in send.sent[-1][1]


def test_a_gone_connection_is_deleted_and_the_others_still_get_theirs() -> None:
    connections = FakeConnections({"cust_a": ["gone", "live"], "cust_b": ["b1"]})
    send = FakeSender(gone={"gone"})
    outcome = push_account_changes(
        [change("cust_a", 1, 1000), change("cust_a", 2, 900), change("cust_b", 1, 5)],
        connections=connections,
        send=send,
    )
    assert connections.removed == [("cust_a", "gone")]
    assert outcome.connections_gone == 1
    assert [c for c, _ in send.sent] == ["live", "live", "b1"]


def test_failures_are_counted_never_raised_and_stop_that_connection_only() -> None:
    connections = FakeConnections(
        {"cust_a": ["broken", "ok"], "cust_b": ["b1"]}, failing={"cust_b"}
    )
    send = FakeSender(broken={"broken"})
    outcome = push_account_changes(
        [change("cust_a", 1, 1000), change("cust_a", 2, 900), change("cust_b", 1, 5)],
        connections=connections,
        send=send,
    )
    assert outcome.send_failures == 1  # stopped at its first failure: no gap, then newer
    assert outcome.lookup_failures == 1
    assert [c for c, _ in send.sent] == ["ok", "ok"]
    assert len(outcome.errors) == 2


def test_no_connections_no_sends() -> None:
    connections = FakeConnections({})
    send = FakeSender()
    outcome = push_account_changes([change("cust_a", 1, 1)], connections=connections, send=send)
    assert (outcome.messages_sent, send.sent) == (0, [])


def test_no_changes_no_lookup() -> None:
    connections = FakeConnections({"cust_a": ["c1"]})
    outcome = push_account_changes([], connections=connections, send=FakeSender())
    assert (connections.watch_calls, outcome.watch_reads) == ([], 0)


# ---- the store on moto: the requests one stream batch sends ------------------------------


def count_requests(client: Any) -> Counter[str]:
    """Every DynamoDB API call the client sends from now on, by operation name."""
    sent: Counter[str] = Counter()

    def before_call(model: Any, **_: Any) -> None:
        sent[model.name] += 1

    client.meta.events.register("before-call.dynamodb", before_call)
    return sent


@pytest.fixture
def store(moto_table: str) -> Connections:
    from token_billing import runtime

    return Connections(runtime.dynamodb_client(), moto_table)


@pytest.mark.parametrize("customers", [1, 40, BATCH_GET_MAX_KEYS])
def test_a_batch_nobody_watches_sends_one_batch_get_item_and_no_query(
    moto_table: str, customers: int
) -> None:
    """Through the stream function's own push: N customers changed, several changes each,
    nobody watching: exactly one BatchGetItem, no Query, nothing posted."""
    import ledger_stream_handler

    from token_billing import runtime

    sent = count_requests(runtime.dynamodb_client())
    changes = [change(f"cust_{n}", v, 5_000 - v) for n in range(customers) for v in (1, 2, 3)]
    tally = ledger_stream_handler.push_live_balances(changes)
    assert dict(sent) == {"BatchGetItem": 1}
    assert tally["BalanceMessagesSent"] == tally["BalancePushFailures"] == 0


def test_more_than_100_customers_are_read_100_keys_at_a_time(store: Connections) -> None:
    sent = count_requests(store._client)
    ids = [f"cust_{n}" for n in range(2 * BATCH_GET_MAX_KEYS + 1)]
    watched = store.watched(ids)
    assert dict(sent) == {"BatchGetItem": 3}
    assert (watched.customers, watched.unread, watched.requests) == (frozenset(), frozenset(), 3)


def test_connect_marks_the_customer_watched_and_disconnect_leaves_the_marker(
    store: Connections,
) -> None:
    store.add(customer_id="cust_a", connection_id="c1", subject="s")
    assert store.watched(["cust_a", "cust_b"]).customers == {"cust_a"}
    store.remove(customer_id="cust_a", connection_id="c1")
    # A stale marker until it expires: a Query that finds nothing, never a message.
    assert store.watched(["cust_a"]).customers == {"cust_a"}
    assert store.of_customer("cust_a") == []


def test_the_marker_only_moves_forward_and_expires_with_the_last_socket(
    store: Connections,
) -> None:
    now = int(time.time())
    store.add(customer_id="cust_a", connection_id="late", subject="s", now_epoch=now)
    store.add(customer_id="cust_a", connection_id="early", subject="s", now_epoch=now - 3600)
    marker = store._client.get_item(
        TableName=store._table, Key={"PK": {"S": "CUST#cust_a"}, "SK": {"S": "WATCH"}}
    )["Item"]
    assert marker["until_epoch"] == marker["ttl_epoch"] == {"N": str(now + CONNECTION_TTL_S)}
    assert store.watched(["cust_a"], now_epoch=now + CONNECTION_TTL_S - 1).customers == {"cust_a"}
    assert store.watched(["cust_a"], now_epoch=now + CONNECTION_TTL_S).customers == set()


@dataclass
class UnprocessedClient:
    """A BatchGetItem that leaves the last key unprocessed `times` times (throttling)."""

    times: int
    calls: list[list[str]] = field(default_factory=list)

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        ((table, request),) = RequestItems.items()
        assert request["ConsistentRead"] is True
        keys = request["Keys"]
        self.calls.append([key["PK"]["S"] for key in keys])
        found = [{"PK": k["PK"], "until_epoch": {"N": str(2**40)}} for k in keys]
        if len(self.calls) <= self.times:
            return {
                "Responses": {table: found[:-1]},
                "UnprocessedKeys": {table: {**request, "Keys": keys[-1:]}},
            }
        return {"Responses": {table: found}, "UnprocessedKeys": {}}


def test_unprocessed_keys_are_asked_again_after_a_pause() -> None:
    client = UnprocessedClient(times=2)
    pauses: list[float] = []
    watched = Connections(client, "T").watched(  # type: ignore[arg-type]
        ["cust_a", "cust_b"], sleep=pauses.append
    )
    assert client.calls == [["CUST#cust_a", "CUST#cust_b"], ["CUST#cust_b"], ["CUST#cust_b"]]
    assert (watched.customers, watched.unread, watched.requests) == (
        frozenset({"cust_a", "cust_b"}),
        frozenset(),
        3,
    )
    assert pauses == [0.05, 0.1]


def test_keys_still_unprocessed_after_the_retries_are_reported_unread() -> None:
    client = UnprocessedClient(times=99)
    watched = Connections(client, "T").watched(  # type: ignore[arg-type]
        ["cust_a", "cust_b"], sleep=lambda _: None
    )
    assert len(client.calls) == 1 + UNPROCESSED_RETRIES
    assert (watched.customers, watched.unread) == (frozenset({"cust_a"}), frozenset({"cust_b"}))
