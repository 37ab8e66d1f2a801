"""Ledger drift, checked as it happens: does an ACCOUNT write agree with what it says it did?

Every balance change is one transaction of the ACCOUNT update, its ledger entry (or hold)
and maybe an order, all under the customer's partition key. Their stream records are not
guaranteed to reach one batch (a batch ends at its size or window, wherever that falls), so
the check does not pair records. Instead the ledger's account update writes what it meant to
change onto the ACCOUNT item itself (`last_change_id`, `last_balance_delta_mt`,
`last_held_delta_mt`, the entry's amount and the holds' amounts it applied), and one image
pair of one record is enough to see whether the item moved by exactly that:

- `version` went up by exactly one (a first write starts at 1);
- the write recorded a change of its own (a new `last_change_id`);
- balance moved by the recorded delta, held by the recorded holds' delta;
- available = balance - held after the write.

A write that bypasses the ledger (a console edit, a script, a bug outside the ledger) leaves
the recorded change as the previous write left it, so at least one of these fails. A forger
who rewrites all of them consistently is beyond this check; the full reconciliation over the
table's export (balance = sum of entries) still names them.
"""

from __future__ import annotations

from dataclasses import dataclass

from token_billing.store.stream_images import RecordedChange


@dataclass(frozen=True, slots=True)
class LedgerDrift:
    """An ACCOUNT write that disagrees with the change it recorded, and how."""

    customer_id: str
    version: int
    reasons: tuple[str, ...]


def ledger_drift(change: RecordedChange) -> LedgerDrift | None:
    """The drift one ACCOUNT write shows, or None when it is exactly what it recorded."""
    new, old = change.new, change.old
    old_version = old.version if old else 0
    old_balance_mt = old.balance_mt if old else 0
    old_held_mt = old.held_mt if old else 0
    reasons: list[str] = []
    if new.version != old_version + 1:
        reasons.append(f"version went from {old_version} to {new.version}, not up by one")
    if new.last_change_id is None:
        reasons.append("the write recorded no change of its own (last_change_id missing)")
    elif old is not None and new.last_change_id == old.last_change_id:
        reasons.append(f"the write left the previous change {new.last_change_id!r} in place")
    balance_moved_mt = new.balance_mt - old_balance_mt
    if new.last_balance_delta_mt != balance_moved_mt:
        reasons.append(
            f"balance moved by {balance_moved_mt} mt, the write recorded "
            f"{new.last_balance_delta_mt} mt"
        )
    held_moved_mt = new.held_mt - old_held_mt
    if new.last_held_delta_mt != held_moved_mt:
        reasons.append(
            f"held moved by {held_moved_mt} mt, the write recorded {new.last_held_delta_mt} mt"
        )
    if new.available_mt != new.balance_mt - new.held_mt:
        reasons.append(
            f"available is {new.available_mt} mt, balance - held is "
            f"{new.balance_mt - new.held_mt} mt"
        )
    if not reasons:
        return None
    return LedgerDrift(change.customer_id, new.version, tuple(reasons))
