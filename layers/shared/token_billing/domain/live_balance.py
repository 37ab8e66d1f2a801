"""The live balance: what a watching client is sent when its account changes, and to whom.

The ledger stream hands over the ACCOUNT changes of one batch. Per customer changed, one
lookup of that customer's live connections (one Query per customer per batch, whatever the
number of debits in it); a customer nobody watches costs that lookup and nothing else. Each
change becomes one `balance` message carrying the account `version`, sent in version order,
so a client that ever sees an older version than it shows drops it. A connection that is
gone is deleted; any other failure to send is counted and skipped, never retried and never
a failure of the stream batch: the next change replaces the lost message, since every
message is the whole state, and the aggregates and alerts must not wait for a socket.

No I/O of its own: the connections and the sending come through the interfaces given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from token_billing.core.units import format_tokens
from token_billing.domain.catalog import LOW_BALANCE_MT
from token_billing.store.stream_images import AccountChange

MESSAGE_TYPE = "balance"
# A limit on everything: a burst of changes of one customer in one batch (up to 100 records)
# sends its newest few; the client would drop all but the newest anyway.
MAX_MESSAGES_PER_CUSTOMER_PER_BATCH = 10


class WatchingConnection(Protocol):
    @property
    def connection_id(self) -> str: ...


class ConnectionDirectory(Protocol):
    """Where connections live (`store.connections.Connections`)."""

    def of_customer(self, customer_id: str) -> Sequence[WatchingConnection]: ...

    def remove(self, *, customer_id: str, connection_id: str) -> None: ...


# Sends one frame; False when the connection is gone (`integrations.websocket_push`).
SendFrame = Callable[[str, bytes], bool]


def balance_message(change: AccountChange) -> dict[str, Any]:
    """The message a watching client gets: the account after this change, exact decimals
    beside the integer milli-tokens (as every reply of the API carries them)."""
    return {
        "type": MESSAGE_TYPE,
        "customer_id": change.customer_id,
        "balance": format_tokens(change.balance_mt),
        "balance_mt": change.balance_mt,
        "available": format_tokens(change.available_mt),
        "available_mt": change.available_mt,
        "held": format_tokens(change.held_mt),
        "held_mt": change.held_mt,
        # The same rule as the balance view: available tokens under the line.
        "low_balance": change.available_mt < LOW_BALANCE_MT,
        "version": change.version,
        "at": change.updated_at,
    }


def encode_message(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


@dataclass
class PushOutcome:
    customers_looked_up: int = 0
    messages_sent: int = 0
    connections_gone: int = 0
    send_failures: int = 0
    lookup_failures: int = 0
    changes_skipped: int = 0  # older changes of a burst past the per-batch limit
    errors: list[str] = field(default_factory=list)


def changes_by_customer(changes: Iterable[AccountChange]) -> dict[str, list[AccountChange]]:
    """Each customer's changes in version order, one per version, newest few only."""
    grouped: dict[str, dict[int, AccountChange]] = {}
    for change in changes:
        grouped.setdefault(change.customer_id, {})[change.version] = change
    return {
        customer_id: [by_version[v] for v in sorted(by_version)]
        for customer_id, by_version in grouped.items()
    }


def push_account_changes(
    changes: Iterable[AccountChange],
    *,
    connections: ConnectionDirectory,
    send: SendFrame,
) -> PushOutcome:
    """Send every change to its customer's live connections (see the module doc)."""
    outcome = PushOutcome()
    for customer_id, ordered in changes_by_customer(changes).items():
        kept = ordered[-MAX_MESSAGES_PER_CUSTOMER_PER_BATCH:]
        outcome.changes_skipped += len(ordered) - len(kept)
        outcome.customers_looked_up += 1
        try:
            watching = [c.connection_id for c in connections.of_customer(customer_id)]
        except Exception as error:
            outcome.lookup_failures += 1
            outcome.errors.append(f"connections of {customer_id}: {error}")
            continue
        for connection_id in watching:
            _send_all(customer_id, connection_id, kept, connections, send, outcome)
    return outcome


def _send_all(
    customer_id: str,
    connection_id: str,
    changes: Sequence[AccountChange],
    connections: ConnectionDirectory,
    send: SendFrame,
    outcome: PushOutcome,
) -> None:
    """One connection's messages, in version order; stops at the first failure, so the
    connection never receives a newer version and then an older one after a retry."""
    for change in changes:
        try:
            delivered = send(connection_id, encode_message(balance_message(change)))
        except Exception as error:
            outcome.send_failures += 1
            outcome.errors.append(f"post to {connection_id}: {error}")
            return
        if not delivered:
            outcome.connections_gone += 1
            try:
                connections.remove(customer_id=customer_id, connection_id=connection_id)
            except Exception as error:  # its TTL removes it anyway
                outcome.errors.append(f"delete {connection_id}: {error}")
            return
        outcome.messages_sent += 1
