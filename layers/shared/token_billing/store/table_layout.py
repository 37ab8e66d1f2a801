"""The single-table layout. Every key the service writes is built here.

One partition per customer holds everything about that customer, so each balance change
is a transaction inside one partition and a customer's reads are single Queries:

    PK              SK                    item
    CUST#<id>       ACCOUNT               balance_mt, held_mt, available_mt, version, totals
    CUST#<id>       TXN#<txn_id>          an immutable ledger entry (idempotency record too)
    CUST#<id>       ACCOUNT#HOLD#<hold_id> tokens reserved for a running VM (not an entry:
                                          holds move no balance, only `held_mt`)
    CUST#<id>       WS#<connection_id>    a live WebSocket watching the balance (2 h TTL)
    CUST#<id>       WATCH                 until_epoch: the latest expiry of the customer's
                                          sockets (TTL the same), read in batches by the stream
    CUST#<id>       LIMITS#VM             the customer's per-VM daily limits (issue 25)
    CUST#<id>       VMDAY#<day>#<vm_id>   a limited VM's captured spending in one UTC day,
                                          moved in the same transaction as the balance

GSI `ledger-by-time` (PK, ledger_sk = "<created_at>#<txn_id>") lists a customer's entries
newest first; only entries carry `ledger_sk`, so the index is sparse. GSI `active-holds`
(active_shard, active_expires_at) holds only active holds, for the expiry sweeper.
"""

from __future__ import annotations

import base64
import hashlib
import re

CUSTOMER_PREFIX = "CUST#"
ACCOUNT_SK = "ACCOUNT"
ENTRY_PREFIX = "TXN#"
LEDGER_BY_TIME_INDEX = "ledger-by-time"
HOLD_PREFIX = ACCOUNT_SK + "#HOLD#"
ACTIVE_HOLDS_INDEX = "active-holds"
# Not under "ACCOUNT": the balance Query (begins_with ACCOUNT) never reads connections.
CONNECTION_PREFIX = "WS#"
# The watch marker: one per customer ever watched, so the stream finds who is watched with
# one BatchGetItem per batch and Queries the connections of those customers only.
WATCH_SK = "WATCH"
# Per-VM daily limits (issue 25): the settings item, and one counter per limited VM and
# UTC day. Not under "ACCOUNT": the balance Query reads neither.
VM_LIMITS_SK = "LIMITS#VM"
VM_DAY_PREFIX = "VMDAY#"
# What the ACCOUNT item's latest write meant to change, written by that same write
# (`ledger.Ledger._account_update`): the ledger stream checks every old/new image pair
# against it (`domain.ledger_drift`), so a write that bypassed the ledger shows at once.
LAST_CHANGE_ID = "last_change_id"
LAST_BALANCE_DELTA = "last_balance_delta_mt"
LAST_HELD_DELTA = "last_held_delta_mt"
# The sparse index of active holds is spread over a few partitions so no single index
# partition takes every hold write; the sweeper queries each shard.
ACTIVE_HOLD_SHARDS = 8

# \Z, not $: `$` also matches before a trailing newline, and "cust_1\n" is not "cust_1".
CUSTOMER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/+=-]{0,127}\Z")


def customer_pk(customer_id: str) -> str:
    return CUSTOMER_PREFIX + customer_id


def entry_sk(txn_id: str) -> str:
    return ENTRY_PREFIX + txn_id


def hold_sk(hold_id: str) -> str:
    return HOLD_PREFIX + hold_id


def connection_sk(connection_id: str) -> str:
    return CONNECTION_PREFIX + connection_id


def vm_day_sk(day: str, vm_id: str) -> str:
    """A VM's counter of one UTC day (`YYYY-MM-DD`): a day's counters share a prefix."""
    return f"{VM_DAY_PREFIX}{day}#{vm_id}"


def active_hold_shard(hold_id: str) -> str:
    digest = hashlib.sha256(hold_id.encode()).digest()
    return f"HOLDS#{digest[0] % ACTIVE_HOLD_SHARDS}"


def transaction_id(customer_id: str, scope: str, idempotency_key: str) -> str:
    """Deterministic id of the entry an idempotent operation writes.

    The same (customer, scope, key) always names the same entry, so a retry collides with
    the first write on `attribute_not_exists` instead of reading first.
    """
    digest = hashlib.sha256(f"{customer_id}\x00{scope}\x00{idempotency_key}".encode()).digest()
    return "txn_" + base64.b32encode(digest[:15]).decode().lower()
