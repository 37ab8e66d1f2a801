"""Holds: tokens reserved for running VMs, as two-phase transfers on the ledger.

    PK          SK                      item
    CUST#<id>   ACCOUNT#HOLD#<hold_id>  the hold: amount still reserved, captured, released,
                                        status, expiry; on the sparse active-holds index
                                        while active

Reserve (hold), then capture (settle) or void (release), with a timeout (the sweeper).
Every step is one conditional transaction of the account item and the hold item.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from token_billing.core.errors import IdempotencyKeyReused
from token_billing.store.codecs import (
    AttributeValue,
    Item,
    attr_n,
    attr_s,
    hold_from_item,
    request_hash,
    usage_cause_attributes,
    usage_counter,
)
from token_billing.store.ledger import Ledger
from token_billing.store.records import ACTIVE, Capture, Hold, NewHold, UsageCause, VmDayLimit
from token_billing.store.table_layout import (
    ACTIVE_HOLD_SHARDS,
    ACTIVE_HOLDS_INDEX,
    active_hold_shard,
    customer_pk,
    hold_sk,
)
from token_billing.store.transactions import (
    ExtraConditionFailed,
    LimitItem,
    retryable_reads,
    vm_day_counter,
)

# A closed hold stays as a tombstone (its id cannot be reused) until DynamoDB's TTL drops it.
CLOSED_HOLD_RETENTION_S = 30 * 24 * 3600


class HoldChanged(Exception):
    """The hold was settled, released or swept between our read and our write."""


def _covering(need_mt: int) -> tuple[str, dict[str, AttributeValue]]:
    """The account's condition for a capture: it exists, and covers `need_mt` if positive."""
    if need_mt <= 0:
        return "attribute_exists(PK)", {}
    return "attribute_exists(PK) AND available_mt >= :need", {":need": attr_n(need_mt)}


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


class HoldLedger(Ledger):
    """The ledger plus two-phase transfers: reserve (hold), then capture (settle) or void
    (release), with a timeout (the sweeper). Every step is one conditional transaction."""

    def place_hold(
        self, *, customer_id: str, hold: NewHold, vm_limit: VmDayLimit | None = None
    ) -> tuple[Hold, bool]:
        """Reserve available tokens; (the hold, replayed). Refused whole when available
        tokens do not cover it, or when it does not fit in what the VM may still spend
        today (`vm_limit`: a ConditionCheck of its day counter, which a hold never moves);
        a repeated hold id returns the first hold."""
        assert hold.amount_mt > 0
        assert vm_limit is None or (vm_limit.spend_mt == 0 and vm_limit.reserve_mt > 0)
        fingerprint = request_hash(hold.canonical_request)
        now = self._clock()
        account = self._account_update(
            customer_id,
            now,
            change_id=f"hold:{hold.hold_id}",
            balance_delta_mt=0,
            held_delta_mt=hold.amount_mt,
            counters={},
            condition="attribute_exists(PK) AND available_mt >= :need",
            condition_values={":need": attr_n(hold.amount_mt)},
        )
        put = {
            "Put": {
                "TableName": self._table,
                "Item": self._hold_item(customer_id, hold, fingerprint, now),
                "ConditionExpression": "attribute_not_exists(PK)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        items: list[Mapping[str, Any]] = [account, put]
        limit = None
        if vm_limit is not None:
            limit = LimitItem(vm_limit, now, position=len(items))
            items.append(vm_day_counter(self._table, customer_id, limit, now))
        try:
            self._transact(
                customer_id,
                items,
                entry_index=None,
                fingerprint=fingerprint,
                record_index=1,
                limit=limit,
            )
        except ExtraConditionFailed as failure:
            assert failure.current is not None, "ALL_OLD returns the existing hold"
            existing = hold_from_item(failure.current)
            if existing.request_hash != fingerprint:
                raise IdempotencyKeyReused(
                    f"hold_id {hold.hold_id!r} was already used for a different hold"
                ) from None
            return existing, True
        # Everything the reply needs was just written: no read-back.
        return hold_from_item(self._hold_item(customer_id, hold, fingerprint, now)), False

    def _hold_item(self, customer_id: str, hold: NewHold, fingerprint: str, now: str) -> Item:
        item: Item = {
            "PK": attr_s(customer_pk(customer_id)),
            "SK": attr_s(hold_sk(hold.hold_id)),
            "entity": attr_s("hold"),
            "hold_id": attr_s(hold.hold_id),
            "customer_id": attr_s(customer_id),
            "amount_mt": attr_n(hold.amount_mt),
            "original_mt": attr_n(hold.amount_mt),
            "captured_mt": attr_n(0),
            "released_mt": attr_n(0),
            "hold_status": attr_s(ACTIVE),
            "created_at": attr_s(now),
            "expires_at": attr_s(hold.expires_at),
            "request_hash": attr_s(fingerprint),
            "active_shard": attr_s(active_hold_shard(hold.hold_id)),
            "active_expires_at": attr_s(hold.expires_at),
        }
        if hold.vm_id:
            item["vm_id"] = attr_s(hold.vm_id)
        return item

    def get_hold(self, customer_id: str, hold_id: str) -> Hold | None:
        with retryable_reads():
            response = self._client.get_item(
                TableName=self._table,
                Key={"PK": attr_s(customer_pk(customer_id)), "SK": attr_s(hold_sk(hold_id))},
                ConsistentRead=True,
            )
        item = response.get("Item")
        return hold_from_item(item) if item else None  # type: ignore[arg-type]

    def _close_hold(
        self, hold: Hold, *, status: str, captured_mt: int, released_mt: int, now: str
    ) -> dict[str, Any]:
        """The hold's part of a transaction that ends it; conditional on it being exactly
        as read (active, same amount), so a racing settle, release or sweep loses."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": {
                    "PK": attr_s(customer_pk(hold.customer_id)),
                    "SK": attr_s(hold_sk(hold.hold_id)),
                },
                "UpdateExpression": (
                    "SET hold_status = :status, amount_mt = :zero, captured_mt = :captured, "
                    "released_mt = :released, closed_at = :now, ttl_epoch = :ttl "
                    "REMOVE active_shard, active_expires_at"
                ),
                "ConditionExpression": "hold_status = :active AND amount_mt = :amount",
                "ExpressionAttributeValues": {
                    ":status": attr_s(status),
                    ":zero": attr_n(0),
                    ":captured": attr_n(hold.captured_mt + captured_mt),
                    ":released": attr_n(released_mt),
                    ":now": attr_s(now),
                    ":ttl": attr_n(_epoch(now) + CLOSED_HOLD_RETENTION_S),
                    ":active": attr_s(ACTIVE),
                    ":amount": attr_n(hold.amount_mt),
                },
            }
        }

    def _shrink_hold(self, hold: Hold, *, captured_mt: int, now: str) -> dict[str, Any]:
        """The hold's part of a capture that keeps it active with what is left (a refused
        renew: the VM gets the rest of the hold as grace until it expires)."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": {
                    "PK": attr_s(customer_pk(hold.customer_id)),
                    "SK": attr_s(hold_sk(hold.hold_id)),
                },
                "UpdateExpression": (
                    "SET amount_mt = :left, captured_mt = :captured, updated_at = :now"
                ),
                "ConditionExpression": "hold_status = :active AND amount_mt = :amount",
                "ExpressionAttributeValues": {
                    ":left": attr_n(hold.amount_mt - captured_mt),
                    ":captured": attr_n(hold.captured_mt + captured_mt),
                    ":now": attr_s(now),
                    ":active": attr_s(ACTIVE),
                    ":amount": attr_n(hold.amount_mt),
                },
            }
        }

    def _capture_items(
        self,
        hold: Hold,
        *,
        from_hold: int,
        released: int,
        keep_remaining: bool,
        next_hold: NewHold | None,
        now: str,
    ) -> list[Mapping[str, Any]]:
        """A capture's items beside the account and the entry: the hold settled (its rest
        released) or shrunk (`keep_remaining`), and the next hold, if any."""
        hold_part = (
            self._shrink_hold(hold, captured_mt=from_hold, now=now)
            if keep_remaining
            else self._close_hold(
                hold, status="settled", captured_mt=from_hold, released_mt=released, now=now
            )
        )
        items: list[Mapping[str, Any]] = [hold_part]
        if next_hold:
            fingerprint = request_hash(next_hold.canonical_request)
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": self._hold_item(hold.customer_id, next_hold, fingerprint, now),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        return items

    def capture_hold(
        self,
        *,
        hold: Hold,
        cost_mt: int,
        scope: str,
        canonical_request: str,
        usage: UsageCause,
        keep_remaining: bool = False,
        next_hold: NewHold | None = None,
        vm_limit: VmDayLimit | None = None,
    ) -> Capture:
        """Capture usage from an active hold in one transaction: the usage entry, the hold
        settled (its rest released) or shrunk, and optionally the next hold placed.

        Usage beyond the hold comes from available tokens; if they do not cover it (plus
        any next hold), nothing happens: InsufficientTokens. Under a VM's daily limit, the
        whole cost counts as the VM's captured spending (`vm_limit`), and a next hold must
        fit after it: VmLimitReached otherwise.
        """
        assert hold.active
        assert cost_mt > 0
        assert not (keep_remaining and next_hold)
        from_hold = min(cost_mt, hold.amount_mt)
        released = 0 if keep_remaining else hold.amount_mt - from_hold
        next_mt = next_hold.amount_mt if next_hold else 0
        held_delta = -from_hold - released + next_mt
        # available moves by -cost - held_delta; conditions cannot subtract, so the ledger
        # states how much available must cover.
        condition, values = _covering(cost_mt + held_delta)
        now = self._clock()
        extra = self._capture_items(
            hold,
            from_hold=from_hold,
            released=released,
            keep_remaining=keep_remaining,
            next_hold=next_hold,
            now=now,
        )
        counters = {"used_mt": cost_mt} | {
            usage_counter(action): mt for action, mt in usage.mt_by_action.items()
        }
        try:
            entry = self._post(
                customer_id=hold.customer_id,
                scope=scope,
                idempotency_key=hold.hold_id,
                kind="usage",
                amount_mt=-cost_mt,
                counters=counters,
                condition=condition,
                condition_values=values,
                canonical_request=canonical_request,
                cause=usage_cause_attributes(usage._replace(hold_id=hold.hold_id)),
                extra_items=extra,
                held_delta_mt=held_delta,
                record_index=2,
                vm_limit=vm_limit,
            )
        except ExtraConditionFailed as failure:
            if failure.index == 2:
                raise HoldChanged(hold.hold_id) from None
            raise IdempotencyKeyReused(
                "next_hold_id was already used for another hold; use a new id"
            ) from None
        return Capture(entry, from_hold if not entry.replayed else 0, released)

    def release_hold(self, hold: Hold, *, status: str = "released") -> bool:
        """Free an active hold, capturing nothing. False when it had already moved on."""
        assert hold.active
        assert status in ("released", "expired")
        now = self._clock()
        account = self._account_update(
            hold.customer_id,
            now,
            change_id=f"{status}:{hold.hold_id}",
            balance_delta_mt=0,
            held_delta_mt=-hold.amount_mt,
            counters={},
            condition="attribute_exists(PK)",
            condition_values={},
        )
        close = self._close_hold(
            hold, status=status, captured_mt=0, released_mt=hold.amount_mt, now=now
        )
        try:
            self._transact(
                hold.customer_id, [account, close], entry_index=None, fingerprint="", record_index=1
            )
        except ExtraConditionFailed:
            return False
        return True

    def expired_holds(self, now_iso: str, *, limit: int) -> list[tuple[str, str]]:
        """(customer_id, hold_id) of active holds past their expiry, from the sparse index."""
        found: list[tuple[str, str]] = []
        for shard in range(ACTIVE_HOLD_SHARDS):
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": ACTIVE_HOLDS_INDEX,
                "KeyConditionExpression": "active_shard = :shard AND active_expires_at <= :now",
                "ExpressionAttributeValues": {
                    ":shard": attr_s(f"HOLDS#{shard}"),
                    ":now": attr_s(now_iso),
                },
                "Limit": limit,
            }
            while len(found) < limit:
                response = self._client.query(**kwargs)
                found.extend(
                    (item["customer_id"]["S"], item["hold_id"]["S"])
                    for item in response.get("Items", [])
                )
                if "LastEvaluatedKey" not in response:
                    break
                kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found[:limit]
