"""Ledger data access over DynamoDB. Knows tables and items, nothing of HTTP or Lambda.

Every balance change is ONE `TransactWriteItems` of (at least) two items:
  0. Update of the ACCOUNT item: balance_mt, available_mt and version move together, under
     the operation's condition (a debit: the account exists and available_mt >= cost).
  1. Put of the immutable ledger entry at a key derived from the idempotency key, under
     `attribute_not_exists`: a retry collides with the first write instead of reading first.
 2+. Items a caller adds (an order moving pending -> paid), each with its own condition.
last. For a VM under a daily limit (issue 25), its counter of the day, under its own
     condition: spent <= limit - amount (conditions cannot add). Customers without limits
     send no such item.
A cancelled transaction names the failed item and returns its current state for free
(`ReturnValuesOnConditionCheckFailure: ALL_OLD`), which is how a replay returns the first
result and a refusal carries the current balance, without a read on the write path.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from token_billing.core.clock import utc_now_iso
from token_billing.store.codecs import (
    USAGE_COUNTER,
    AttributeValue,
    Item,
    account_from_item,
    attr_n,
    attr_s,
    cause_attributes,
    request_hash,
    usage_cause_attributes,
    usage_counter,
)
from token_billing.store.entry_reads import EntryReads
from token_billing.store.records import Account, CauseValue, PostedEntry, UsageCause, VmDayLimit
from token_billing.store.table_layout import (
    ACCOUNT_SK,
    LAST_BALANCE_DELTA,
    LAST_CHANGE_ID,
    LAST_HELD_DELTA,
    customer_pk,
    entry_sk,
    transaction_id,
)
from token_billing.store.transactions import (
    LimitItem,
    replay_of,
    retryable_reads,
    run_transaction,
    vm_day_counter,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ACCOUNT_COUNTERS = frozenset(
    {"purchased_mt", "bonus_mt", "granted_mt", "used_mt", "clawed_back_mt"}
)


class Ledger(EntryReads):
    """Balance changes and the reads that check them, for one ledger table."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        clock: Callable[[], str] = utc_now_iso,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock
        self._sleep = sleep

    # ---- balance changes -------------------------------------------------------------

    def debit(
        self,
        *,
        customer_id: str,
        idempotency_key: str,
        amount_mt: int,
        canonical_request: str,
        usage: UsageCause,
        kind: str = "usage",
        scope: str | None = None,
        vm_limit: VmDayLimit | None = None,
    ) -> PostedEntry:
        """Take `amount_mt` from available tokens; refused whole if they do not cover it,
        or if `vm_limit` says the VM's spending today would pass its daily limit.

        The usage's cost per action also moves the account's lifetime per-action counters,
        from whose stream images the daily usage aggregates are derived idempotently.
        """
        assert amount_mt > 0
        by_action = dict(usage.mt_by_action)
        assert not by_action or sum(by_action.values()) == amount_mt
        counters = {"used_mt": amount_mt} | {
            usage_counter(action): mt for action, mt in by_action.items()
        }
        return self._post(
            customer_id=customer_id,
            scope=scope or kind,
            idempotency_key=idempotency_key,
            kind=kind,
            amount_mt=-amount_mt,
            counters=counters,
            condition="attribute_exists(PK) AND available_mt >= :spend",
            condition_values={":spend": attr_n(amount_mt)},
            canonical_request=canonical_request,
            cause=usage_cause_attributes(usage),
            vm_limit=vm_limit,
        )

    def credit(
        self,
        *,
        customer_id: str,
        scope: str,
        idempotency_key: str,
        kind: str,
        amount_mt: int,
        counters: Mapping[str, int],
        canonical_request: str,
        cause: Mapping[str, CauseValue],
        extra_items: Sequence[Mapping[str, Any]] = (),
    ) -> PostedEntry:
        """Add tokens (a paid order, a grant); creates the account on its first credit."""
        assert amount_mt > 0
        return self._post(
            customer_id=customer_id,
            scope=scope,
            idempotency_key=idempotency_key,
            kind=kind,
            amount_mt=amount_mt,
            counters=counters,
            condition=None,
            condition_values={},
            canonical_request=canonical_request,
            cause=cause_attributes(cause),
            extra_items=extra_items,
        )

    def grant(
        self,
        *,
        customer_id: str,
        idempotency_key: str,
        amount_mt: int,
        reason: str,
        granted_by: str,
    ) -> PostedEntry:
        """Promotional or support tokens, recorded as their own ledger kind."""
        canonical = json.dumps({"amount_mt": amount_mt, "reason": reason}, sort_keys=True)
        return self.credit(
            customer_id=customer_id,
            scope="grant",
            idempotency_key=idempotency_key,
            kind="grant",
            amount_mt=amount_mt,
            counters={"granted_mt": amount_mt},
            canonical_request=canonical,
            cause={"reason": reason, "granted_by": granted_by},
        )

    def credit_purchase(
        self,
        *,
        customer_id: str,
        order_id: str,
        package_id: str,
        tokens_mt: int,
        bonus_mt: int,
        catalog_version: str,
        extra_items: Sequence[Mapping[str, Any]] = (),
    ) -> PostedEntry:
        """Tokens (and bonus) of a paid order, credited once per order id."""
        canonical = json.dumps(
            {"order_id": order_id, "tokens_mt": tokens_mt, "bonus_mt": bonus_mt}, sort_keys=True
        )
        return self.credit(
            customer_id=customer_id,
            scope="order",
            idempotency_key=order_id,
            kind="purchase",
            amount_mt=tokens_mt + bonus_mt,
            counters={"purchased_mt": tokens_mt, "bonus_mt": bonus_mt},
            canonical_request=canonical,
            cause={
                "order_id": order_id,
                "package_id": package_id,
                "catalog_version": catalog_version,
                "bonus_mt": bonus_mt,
            },
            extra_items=extra_items,
        )

    def clawback(
        self,
        *,
        customer_id: str,
        idempotency_key: str,
        amount_mt: int,
        canonical_request: str,
        cause: Mapping[str, CauseValue],
        extra_items: Sequence[Mapping[str, Any]] = (),
    ) -> PostedEntry:
        """Take back tokens for a refund or dispute: the one change that may go negative."""
        assert amount_mt > 0
        return self._post(
            customer_id=customer_id,
            scope="clawback",
            idempotency_key=idempotency_key,
            kind="clawback",
            amount_mt=-amount_mt,
            counters={"clawed_back_mt": amount_mt},
            condition="attribute_exists(PK)",
            condition_values={},
            canonical_request=canonical_request,
            cause=cause_attributes(cause),
            extra_items=extra_items,
        )

    def _post(
        self,
        *,
        customer_id: str,
        scope: str,
        idempotency_key: str,
        kind: str,
        amount_mt: int,
        counters: Mapping[str, int],
        condition: str | None,
        condition_values: Mapping[str, AttributeValue],
        canonical_request: str,
        cause: Item,
        extra_items: Sequence[Mapping[str, Any]] = (),
        held_delta_mt: int = 0,
        record_index: int | None = None,
        vm_limit: VmDayLimit | None = None,
    ) -> PostedEntry:
        """One transaction: the account update, the entry, then `extra_items`, then the VM's
        day counter when a limit applies."""
        assert amount_mt != 0
        assert 3 + len(extra_items) <= 100  # DynamoDB's transaction limit
        now = self._clock()
        fingerprint = request_hash(canonical_request)
        txn_id, put_entry = self._entry_put(
            customer_id, scope, idempotency_key, kind, amount_mt, fingerprint, now, cause
        )
        account = self._account_update(
            customer_id,
            now,
            change_id=txn_id,  # the drift check's: this write changed the account by the entry
            balance_delta_mt=amount_mt,
            held_delta_mt=held_delta_mt,
            counters=counters,
            condition=condition,
            condition_values=condition_values,
        )
        items: list[Mapping[str, Any]] = [account, put_entry, *extra_items]
        limit = None
        if vm_limit is not None:
            limit = LimitItem(vm_limit, now, position=len(items))
            items.append(vm_day_counter(self._table, customer_id, limit, now))
        replayed = run_transaction(
            self._client,
            customer_id,
            items,
            sleep=self._sleep,
            entry_index=1,
            fingerprint=fingerprint,
            record_index=record_index,
            limit=limit,
        )
        return replayed or PostedEntry(txn_id, customer_id, kind, amount_mt, now, replayed=False)

    def _entry_put(
        self,
        customer_id: str,
        scope: str,
        idempotency_key: str,
        kind: str,
        amount_mt: int,
        fingerprint: str,
        now: str,
        cause: Item,
    ) -> tuple[str, dict[str, Any]]:
        """The immutable entry's Put, at the key its idempotency key names: a retry collides
        with the first write instead of reading first."""
        txn_id = transaction_id(customer_id, scope, idempotency_key)
        entry: Item = {
            "PK": attr_s(customer_pk(customer_id)),
            "SK": attr_s(entry_sk(txn_id)),
            "entity": attr_s("entry"),
            "txn_id": attr_s(txn_id),
            "customer_id": attr_s(customer_id),
            "kind": attr_s(kind),
            "amount_mt": attr_n(amount_mt),
            "idempotency_key": attr_s(idempotency_key),
            "request_hash": attr_s(fingerprint),
            "created_at": attr_s(now),
            "ledger_sk": attr_s(f"{now}#{txn_id}"),
            **cause,
        }
        put = {
            "Put": {
                "TableName": self._table,
                "Item": entry,
                "ConditionExpression": "attribute_not_exists(PK)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        return txn_id, put

    def _account_update(
        self,
        customer_id: str,
        now: str,
        *,
        change_id: str | None = None,
        balance_delta_mt: int,
        held_delta_mt: int,
        counters: Mapping[str, int],
        condition: str | None,
        condition_values: Mapping[str, AttributeValue],
    ) -> dict[str, Any]:
        """The account's part of a transaction: balance, held and available move together
        (available = balance - held), with the version and lifetime counters.

        The item also records what this write meant to change (`last_change_id`, the
        balance and held deltas): the ledger stream compares each old/new image pair with
        it (`domain.ledger_drift`), so a write that bypassed the ledger shows at once,
        with no request beyond the stream's own. `change_id` names the write (the entry's
        `txn_id`, `hold:<id>`); a write without a name of its own gets a random one, which is
        all the check needs: a new value on every write."""
        assert all(name in ACCOUNT_COUNTERS or USAGE_COUNTER.match(name) for name in counters)
        change_id = change_id or f"write:{uuid.uuid4().hex}"
        available_delta_mt = balance_delta_mt - held_delta_mt
        values: dict[str, AttributeValue] = {
            ":one": attr_n(1),
            ":now": attr_s(now),
            ":cid": attr_s(customer_id),
            ":change": attr_s(change_id),
            ":balance_change": attr_n(balance_delta_mt),
            ":held_change": attr_n(held_delta_mt),
            **condition_values,
        }
        sets = [
            "updated_at = :now",
            "customer_id = :cid",
            "created_at = if_not_exists(created_at, :now)",
            f"{LAST_CHANGE_ID} = :change",
            f"{LAST_BALANCE_DELTA} = :balance_change",
            f"{LAST_HELD_DELTA} = :held_change",
        ]
        adds = ["version :one"]
        for name, delta in (
            ("balance_mt", balance_delta_mt),
            ("held_mt", held_delta_mt),
            ("available_mt", available_delta_mt),
        ):
            if delta:
                adds.append(f"{name} :{name}")
                values[f":{name}"] = attr_n(delta)
        if not held_delta_mt:
            sets.append("held_mt = if_not_exists(held_mt, :zero)")
            values[":zero"] = attr_n(0)
        for index, (counter, value) in enumerate(sorted(counters.items())):
            adds.append(f"{counter} :c{index}")
            values[f":c{index}"] = attr_n(value)
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"PK": attr_s(customer_pk(customer_id)), "SK": attr_s(ACCOUNT_SK)},
            "UpdateExpression": "SET " + ", ".join(sets) + " ADD " + ", ".join(adds),
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if condition:
            update["ConditionExpression"] = condition
        return {"Update": update}

    def _transact(
        self,
        customer_id: str,
        transact_items: Sequence[Mapping[str, Any]],
        *,
        entry_index: int | None,
        fingerprint: str,
        record_index: int | None = None,
        limit: LimitItem | None = None,
    ) -> PostedEntry | None:
        """One transaction of this ledger's (see `transactions.run_transaction`)."""
        return run_transaction(
            self._client,
            customer_id,
            transact_items,
            sleep=self._sleep,
            entry_index=entry_index,
            fingerprint=fingerprint,
            record_index=record_index,
            limit=limit,
        )

    # ---- reads -----------------------------------------------------------------------

    def get_account(self, customer_id: str, *, consistent: bool = True) -> Account | None:
        """The account item, or None for a customer who never had tokens."""
        with retryable_reads():
            response = self._client.get_item(
                TableName=self._table,
                Key={"PK": attr_s(customer_pk(customer_id)), "SK": attr_s(ACCOUNT_SK)},
                ConsistentRead=consistent,
            )
        item = response.get("Item")
        return account_from_item(item) if item else None  # type: ignore[arg-type]

    def first_result(
        self, *, customer_id: str, scope: str, idempotency_key: str, canonical_request: str
    ) -> PostedEntry | None:
        """What an operation already posted under this key answered (1 strongly consistent
        GetItem of its entry), or None. For a refusal decided before any write, so that a
        replay still answers its first result."""
        txn_id = transaction_id(customer_id, scope, idempotency_key)
        with retryable_reads():
            response = self._client.get_item(
                TableName=self._table,
                Key={"PK": attr_s(customer_pk(customer_id)), "SK": attr_s(entry_sk(txn_id))},
                ConsistentRead=True,
            )
        item = response.get("Item")
        return replay_of(item, request_hash(canonical_request)) if item else None  # type: ignore[arg-type]
