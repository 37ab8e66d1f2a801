"""The live balance push, with the connections and the sending as fakes: one lookup per
customer per batch, messages in version order, gone connections deleted, failures counted
and never raised."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

from token_billing.domain.live_balance import (
    MAX_MESSAGES_PER_CUSTOMER_PER_BATCH,
    balance_message,
    push_account_changes,
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
    by_customer: dict[str, list[str]]
    lookups: list[str] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)

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


def test_one_lookup_per_customer_per_batch_whatever_the_number_of_changes() -> None:
    connections = FakeConnections({"cust_a": ["c1"]})
    send = FakeSender()
    changes = [change("cust_a", v, 1_000_000 - v) for v in range(1, 6)]
    changes += [change("cust_nobody", v, 5_000) for v in range(1, 50)]
    outcome = push_account_changes(changes, connections=connections, send=send)
    assert sorted(connections.lookups) == ["cust_a", "cust_nobody"]
    assert outcome.customers_looked_up == 2
    assert outcome.messages_sent == 5
    assert [data.count(b'"version":') for _, data in send.sent] == [1] * 5


def test_messages_go_out_in_version_order_even_when_the_batch_is_not() -> None:
    connections = FakeConnections({"cust_a": ["c1", "c2"]})
    send = FakeSender()
    changes = [change("cust_a", v, 1000 * v) for v in (3, 1, 2, 2)]
    push_account_changes(changes, connections=connections, send=send)
    import json

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
