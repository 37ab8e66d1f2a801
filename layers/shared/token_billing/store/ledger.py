"""Ledger data access over DynamoDB. Knows tables and items, nothing of HTTP or Lambda.

Every balance change is ONE `TransactWriteItems` of (at least) two items:
  0. Update of the ACCOUNT item: balance_mt, available_mt and version move together, under
     the operation's condition (a debit: the account exists and available_mt >= cost).
  1. Put of the immutable ledger entry at a key derived from the idempotency key, under
     `attribute_not_exists`: a retry collides with the first write instead of reading first.
 2+. Items a caller adds (an order moving pending -> paid), each with its own condition.
A cancelled transaction names the failed item and returns its current state for free
(`ReturnValuesOnConditionCheckFailure: ALL_OLD`), which is how a replay returns the first
result and a refusal carries the current balance, without a read on the write path.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from token_billing.store.codecs import (
    USAGE_COUNTER,
    AttributeValue,
    Item,
    account_from_item,
    attr_n,
    attr_s,
    request_hash,
    usage_counter,
    utc_now_iso,
)
from token_billing.store.records import Account, PostedEntry
from token_billing.store.table_layout import (
    ACCOUNT_SK,
    ENTRY_PREFIX,
    LAST_BALANCE_DELTA,
    LAST_CHANGE_ID,
    LAST_HELD_DELTA,
    customer_pk,
    entry_sk,
    transaction_id,
)
from token_billing.store.transactions import retryable_reads, run_transaction

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ACCOUNT_COUNTERS = frozenset(
    {"purchased_mt", "bonus_mt", "granted_mt", "used_mt", "clawed_back_mt"}
)


class Ledger:
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
        cause: Mapping[str, AttributeValue],
        usage_mt_by_action: Mapping[str, int] | None = None,
        kind: str = "usage",
        scope: str | None = None,
    ) -> PostedEntry:
        """Take `amount_mt` from available tokens; refused whole if they do not cover it.

        `usage_mt_by_action` also moves the account's lifetime per-action counters, from
        whose stream images the daily usage aggregates are derived idempotently.
        """
        assert amount_mt > 0
        by_action = dict(usage_mt_by_action or {})
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
            cause=cause,
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
        cause: Mapping[str, AttributeValue],
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
            cause=cause,
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
            cause={"reason": attr_s(reason), "granted_by": attr_s(granted_by)},
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
                "order_id": attr_s(order_id),
                "package_id": attr_s(package_id),
                "catalog_version": attr_s(catalog_version),
                "bonus_mt": attr_n(bonus_mt),
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
        cause: Mapping[str, AttributeValue],
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
            cause=cause,
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
        cause: Mapping[str, AttributeValue],
        extra_items: Sequence[Mapping[str, Any]] = (),
        held_delta_mt: int = 0,
        record_index: int | None = None,
    ) -> PostedEntry:
        """One transaction: the account update, the entry, then `extra_items`."""
        assert amount_mt != 0
        assert 2 + len(extra_items) <= 100  # DynamoDB's transaction limit
        txn_id = transaction_id(customer_id, scope, idempotency_key)
        fingerprint = request_hash(canonical_request)
        now = self._clock()
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
        account = self._account_update(
            customer_id,
            now,
            change_id=txn_id,
            balance_delta_mt=amount_mt,
            held_delta_mt=held_delta_mt,
            counters=counters,
            condition=condition,
            condition_values=condition_values,
        )
        put_entry = {
            "Put": {
                "TableName": self._table,
                "Item": entry,
                "ConditionExpression": "attribute_not_exists(PK)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        replayed = self._transact(
            customer_id,
            [account, put_entry, *extra_items],
            entry_index=1,
            fingerprint=fingerprint,
            record_index=record_index,
        )
        return replayed or PostedEntry(txn_id, customer_id, kind, amount_mt, now, replayed=False)

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

    def iter_entries(self, customer_id: str, *, projection: str | None = None) -> Iterator[Item]:
        """Every ledger entry of a customer, oldest key first (strongly consistent)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": attr_s(customer_pk(customer_id)),
                ":prefix": attr_s(ENTRY_PREFIX),
            },
            "ConsistentRead": True,
        }
        if projection:
            kwargs["ProjectionExpression"] = projection
        while True:
            response = self._client.query(**kwargs)
            yield from response.get("Items", [])  # type: ignore[misc]
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return
            kwargs["ExclusiveStartKey"] = last_key

    def sum_entries_mt(self, customer_id: str) -> int:
        """Sum of a customer's ledger entries: what their balance must equal."""
        return sum(
            int(item["amount_mt"]["N"])
            for item in self.iter_entries(customer_id, projection="amount_mt")
        )
