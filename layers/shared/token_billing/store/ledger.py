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

import hashlib
import json
import random
import re
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from token_billing.core.errors import (
    CustomerNotFound,
    IdempotencyKeyReused,
    InsufficientTokens,
    ServiceUnavailable,
)
from token_billing.core.units import format_tokens
from token_billing.store.table_layout import (
    ACCOUNT_SK,
    ACTIVE_HOLD_SHARDS,
    ACTIVE_HOLDS_INDEX,
    ENTRY_PREFIX,
    active_hold_shard,
    customer_pk,
    entry_sk,
    hold_sk,
    transaction_id,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

# A lost race between two transactions on one account item is resolved by trying again;
# bounded so a hot account degrades into a retryable error, never an unbounded wait.
TRANSACTION_ATTEMPTS = 5
TRANSACTION_BACKOFF_BASE_S = 0.015
RETRYABLE_CANCELLATION_CODES = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
RETRYABLE_ERROR_CODES = frozenset(
    {
        "TransactionConflictException",
        "TransactionInProgressException",
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
ACCOUNT_COUNTERS = frozenset(
    {"purchased_mt", "bonus_mt", "granted_mt", "used_mt", "clawed_back_mt"}
)


USAGE_COUNTER = re.compile(r"^used_[a-z][a-z_]{0,30}_mt$")


def usage_counter(action: str) -> str:
    """The account attribute counting an action's lifetime usage: used_<action>_mt."""
    name = f"used_{action}_mt"
    assert USAGE_COUNTER.match(name), action
    return name


def usage_by_action(item: Mapping[str, AttributeValue]) -> dict[str, int]:
    """The per-action lifetime counters of an account item (or stream image)."""
    found = {}
    for name, value in item.items():
        if name != "used_mt" and USAGE_COUNTER.match(name):
            found[name[len("used_") : -len("_mt")]] = int(value["N"])
    return found


class ExtraConditionFailed(Exception):
    """A caller-supplied transaction item (index >= 2) failed its condition."""

    def __init__(self, index: int, current: Item | None) -> None:
        super().__init__(f"transaction item {index} failed its condition")
        self.index = index
        self.current = current


@dataclass(frozen=True, slots=True)
class PostedEntry:
    """The result of a balance change; `replayed` when the key had already been used."""

    txn_id: str
    customer_id: str
    kind: str
    amount_mt: int
    created_at: str
    replayed: bool


@dataclass(frozen=True, slots=True)
class Account:
    customer_id: str
    balance_mt: int
    held_mt: int
    available_mt: int
    version: int
    purchased_mt: int
    bonus_mt: int
    granted_mt: int
    used_mt: int
    clawed_back_mt: int
    plan_tier: str | None
    created_at: str | None
    updated_at: str | None


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def request_hash(canonical_request: str) -> str:
    return hashlib.sha256(canonical_request.encode()).hexdigest()


def encode_lines(records: Sequence[Sequence[object]]) -> bytes:
    """Usage lines as compressed compact JSON: a 1,000-line batch stays a few KB."""
    return zlib.compress(json.dumps(records, separators=(",", ":")).encode(), 6)


def decode_lines(blob: bytes) -> list[list[object]]:
    lines: list[list[object]] = json.loads(zlib.decompress(blob))
    return lines


def _s(value: str) -> AttributeValue:
    return {"S": value}


def _n(value: int) -> AttributeValue:
    return {"N": str(value)}


def condition_failed(error: ClientError) -> bool:
    """Whether a single-item write failed its ConditionExpression (not a transaction)."""
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def item_int(item: Mapping[str, AttributeValue], name: str) -> int:
    """A number attribute as int; 0 when the item does not carry it."""
    value = item.get(name)
    return int(value["N"]) if value else 0


def item_str(item: Mapping[str, AttributeValue], name: str) -> str | None:
    """A string attribute, or None when the item does not carry it."""
    value = item.get(name)
    return value["S"] if value else None


def account_from_item(item: Item) -> Account:
    return Account(
        customer_id=item["customer_id"]["S"],
        balance_mt=item_int(item, "balance_mt"),
        held_mt=item_int(item, "held_mt"),
        available_mt=item_int(item, "available_mt"),
        version=item_int(item, "version"),
        purchased_mt=item_int(item, "purchased_mt"),
        bonus_mt=item_int(item, "bonus_mt"),
        granted_mt=item_int(item, "granted_mt"),
        used_mt=item_int(item, "used_mt"),
        clawed_back_mt=item_int(item, "clawed_back_mt"),
        plan_tier=item_str(item, "plan_tier"),
        created_at=item_str(item, "created_at"),
        updated_at=item_str(item, "updated_at"),
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
            condition_values={":spend": _n(amount_mt)},
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
            cause={"reason": _s(reason), "granted_by": _s(granted_by)},
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
                "order_id": _s(order_id),
                "package_id": _s(package_id),
                "catalog_version": _s(catalog_version),
                "bonus_mt": _n(bonus_mt),
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
            "PK": _s(customer_pk(customer_id)),
            "SK": _s(entry_sk(txn_id)),
            "entity": _s("entry"),
            "txn_id": _s(txn_id),
            "customer_id": _s(customer_id),
            "kind": _s(kind),
            "amount_mt": _n(amount_mt),
            "idempotency_key": _s(idempotency_key),
            "request_hash": _s(fingerprint),
            "created_at": _s(now),
            "ledger_sk": _s(f"{now}#{txn_id}"),
            **cause,
        }
        account = self._account_update(
            customer_id,
            now,
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
        balance_delta_mt: int,
        held_delta_mt: int,
        counters: Mapping[str, int],
        condition: str | None,
        condition_values: Mapping[str, AttributeValue],
    ) -> dict[str, Any]:
        """The account's part of a transaction: balance, held and available move together
        (available = balance - held), with the version and lifetime counters."""
        assert all(name in ACCOUNT_COUNTERS or USAGE_COUNTER.match(name) for name in counters)
        available_delta_mt = balance_delta_mt - held_delta_mt
        values: dict[str, AttributeValue] = {
            ":one": _n(1),
            ":now": _s(now),
            ":cid": _s(customer_id),
            **condition_values,
        }
        sets = [
            "updated_at = :now",
            "customer_id = :cid",
            "created_at = if_not_exists(created_at, :now)",
        ]
        adds = ["version :one"]
        for name, delta in (
            ("balance_mt", balance_delta_mt),
            ("held_mt", held_delta_mt),
            ("available_mt", available_delta_mt),
        ):
            if delta:
                adds.append(f"{name} :{name}")
                values[f":{name}"] = _n(delta)
        if not held_delta_mt:
            sets.append("held_mt = if_not_exists(held_mt, :zero)")
            values[":zero"] = _n(0)
        for index, (counter, value) in enumerate(sorted(counters.items())):
            adds.append(f"{counter} :c{index}")
            values[f":c{index}"] = _n(value)
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"PK": _s(customer_pk(customer_id)), "SK": _s(ACCOUNT_SK)},
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
        """Run one transaction with bounded retries of lost races. None when it committed;
        the first result when the entry at `entry_index` already existed (a replay).

        A failed condition on `record_index` (an idempotency record other than an entry,
        such as a hold) raises ExtraConditionFailed before any account refusal is read."""
        assert len(transact_items) <= 100  # DynamoDB's transaction limit
        for attempt in range(TRANSACTION_ATTEMPTS):
            if attempt:
                self._backoff(attempt)
            try:
                self._client.transact_write_items(TransactItems=transact_items)  # type: ignore[arg-type]
            except ClientError as error:
                outcome = self._interpret_failure(
                    error, customer_id, fingerprint, entry_index, record_index
                )
                if outcome is not None:
                    return outcome
            except (ConnectionError, HTTPClientError) as error:
                # The write may or may not have landed; the same key makes a retry safe.
                raise ServiceUnavailable(
                    "could not reach the ledger; retry with the same idempotency key"
                ) from error
            else:
                return None
        raise ServiceUnavailable("the ledger is busy; retry with the same idempotency key")

    def _interpret_failure(
        self,
        error: ClientError,
        customer_id: str,
        fingerprint: str,
        entry_index: int | None,
        record_index: int | None = None,
    ) -> PostedEntry | None:
        """The first result when the key was used before, None when a retry may succeed;
        otherwise raises the domain error the failure means."""
        code = error.response.get("Error", {}).get("Code", "")
        if code != "TransactionCanceledException":
            if code in RETRYABLE_ERROR_CODES:
                return None
            raise error
        reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
        codes = [reason.get("Code", "None") for reason in reasons]
        # The entry exists: this key was used before. Its first result stands, whatever
        # the account looks like now.
        if entry_index is not None and codes[entry_index : entry_index + 1] == [
            "ConditionalCheckFailed"
        ]:
            return self._replay(reasons[entry_index].get("Item"), fingerprint)
        if record_index is not None and codes[record_index : record_index + 1] == [
            "ConditionalCheckFailed"
        ]:
            raise ExtraConditionFailed(record_index, reasons[record_index].get("Item"))
        if reasons and codes[0] == "ConditionalCheckFailed":
            self._raise_account_refusal(customer_id, reasons[0].get("Item"))
        for index in range(1, len(reasons)):
            if codes[index] == "ConditionalCheckFailed":
                raise ExtraConditionFailed(index, reasons[index].get("Item"))
        if any(code in RETRYABLE_CANCELLATION_CODES for code in codes):
            return None
        raise error

    def _replay(self, item: Item | None, fingerprint: str) -> PostedEntry:
        assert item is not None, "ALL_OLD returns the existing entry"
        if item["request_hash"]["S"] != fingerprint:
            raise IdempotencyKeyReused(
                "this idempotency key was already used for a different request; "
                "use a new key for a new request",
                transaction_id=item["txn_id"]["S"],
            )
        return PostedEntry(
            txn_id=item["txn_id"]["S"],
            customer_id=item["customer_id"]["S"],
            kind=item["kind"]["S"],
            amount_mt=int(item["amount_mt"]["N"]),
            created_at=item["created_at"]["S"],
            replayed=True,
        )

    @staticmethod
    def _raise_account_refusal(customer_id: str, item: Item | None) -> None:
        if item is None:
            raise CustomerNotFound(f"customer {customer_id!r} has no token account")
        account = account_from_item(item)
        raise InsufficientTokens(
            f"available tokens ({format_tokens(account.available_mt)}) do not cover this "
            "request; nothing was debited",
            balance=format_tokens(account.balance_mt),
            available=format_tokens(account.available_mt),
            balance_mt=account.balance_mt,
            available_mt=account.available_mt,
        )

    def _backoff(self, attempt: int) -> None:
        # Full jitter: spreads racing writers apart instead of colliding again in step.
        self._sleep(random.uniform(0, TRANSACTION_BACKOFF_BASE_S * 2 ** (attempt - 1)))

    # ---- reads -----------------------------------------------------------------------

    def get_account(self, customer_id: str, *, consistent: bool = True) -> Account | None:
        """The account item, or None for a customer who never had tokens."""
        response = self._client.get_item(
            TableName=self._table,
            Key={"PK": _s(customer_pk(customer_id)), "SK": _s(ACCOUNT_SK)},
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
                ":pk": _s(customer_pk(customer_id)),
                ":prefix": _s(ENTRY_PREFIX),
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


# ---- holds: tokens reserved for running VMs ------------------------------------------

# A closed hold stays as a tombstone (its id cannot be reused) until DynamoDB's TTL drops it.
CLOSED_HOLD_RETENTION_S = 30 * 24 * 3600
ACTIVE = "active"


class HoldChanged(Exception):
    """The hold was settled, released or swept between our read and our write."""


@dataclass(frozen=True, slots=True)
class Hold:
    hold_id: str
    customer_id: str
    vm_id: str | None
    amount_mt: int  # still reserved
    original_mt: int
    captured_mt: int
    released_mt: int
    status: str  # active | settled | released | expired
    created_at: str
    expires_at: str
    request_hash: str

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


@dataclass(frozen=True, slots=True)
class NewHold:
    hold_id: str
    amount_mt: int
    expires_at: str
    vm_id: str | None
    canonical_request: str


@dataclass(frozen=True, slots=True)
class Capture:
    entry: PostedEntry
    from_hold_mt: int
    released_mt: int


def hold_from_item(item: Item) -> Hold:
    return Hold(
        hold_id=item["hold_id"]["S"],
        customer_id=item["customer_id"]["S"],
        vm_id=item_str(item, "vm_id"),
        amount_mt=item_int(item, "amount_mt"),
        original_mt=item_int(item, "original_mt"),
        captured_mt=item_int(item, "captured_mt"),
        released_mt=item_int(item, "released_mt"),
        status=item["hold_status"]["S"],
        created_at=item["created_at"]["S"],
        expires_at=item["expires_at"]["S"],
        request_hash=item["request_hash"]["S"],
    )


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


class HoldLedger(Ledger):
    """The ledger plus two-phase transfers: reserve (hold), then capture (settle) or void
    (release), with a timeout (the sweeper). Every step is one conditional transaction."""

    def place_hold(self, *, customer_id: str, hold: NewHold) -> tuple[Hold, bool]:
        """Reserve available tokens; (the hold, replayed). Refused whole when available
        tokens do not cover it; a repeated hold id returns the first hold."""
        assert hold.amount_mt > 0
        fingerprint = request_hash(hold.canonical_request)
        now = self._clock()
        account = self._account_update(
            customer_id,
            now,
            balance_delta_mt=0,
            held_delta_mt=hold.amount_mt,
            counters={},
            condition="attribute_exists(PK) AND available_mt >= :need",
            condition_values={":need": _n(hold.amount_mt)},
        )
        put = {
            "Put": {
                "TableName": self._table,
                "Item": self._hold_item(customer_id, hold, fingerprint, now),
                "ConditionExpression": "attribute_not_exists(PK)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        try:
            self._transact(
                customer_id,
                [account, put],
                entry_index=None,
                fingerprint=fingerprint,
                record_index=1,
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
            "PK": _s(customer_pk(customer_id)),
            "SK": _s(hold_sk(hold.hold_id)),
            "entity": _s("hold"),
            "hold_id": _s(hold.hold_id),
            "customer_id": _s(customer_id),
            "amount_mt": _n(hold.amount_mt),
            "original_mt": _n(hold.amount_mt),
            "captured_mt": _n(0),
            "released_mt": _n(0),
            "hold_status": _s(ACTIVE),
            "created_at": _s(now),
            "expires_at": _s(hold.expires_at),
            "request_hash": _s(fingerprint),
            "active_shard": _s(active_hold_shard(hold.hold_id)),
            "active_expires_at": _s(hold.expires_at),
        }
        if hold.vm_id:
            item["vm_id"] = _s(hold.vm_id)
        return item

    def get_hold(self, customer_id: str, hold_id: str) -> Hold | None:
        response = self._client.get_item(
            TableName=self._table,
            Key={"PK": _s(customer_pk(customer_id)), "SK": _s(hold_sk(hold_id))},
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
                "Key": {"PK": _s(customer_pk(hold.customer_id)), "SK": _s(hold_sk(hold.hold_id))},
                "UpdateExpression": (
                    "SET hold_status = :status, amount_mt = :zero, captured_mt = :captured, "
                    "released_mt = :released, closed_at = :now, ttl_epoch = :ttl "
                    "REMOVE active_shard, active_expires_at"
                ),
                "ConditionExpression": "hold_status = :active AND amount_mt = :amount",
                "ExpressionAttributeValues": {
                    ":status": _s(status),
                    ":zero": _n(0),
                    ":captured": _n(hold.captured_mt + captured_mt),
                    ":released": _n(released_mt),
                    ":now": _s(now),
                    ":ttl": _n(_epoch(now) + CLOSED_HOLD_RETENTION_S),
                    ":active": _s(ACTIVE),
                    ":amount": _n(hold.amount_mt),
                },
            }
        }

    def _shrink_hold(self, hold: Hold, *, captured_mt: int, now: str) -> dict[str, Any]:
        """The hold's part of a capture that keeps it active with what is left (a refused
        renew: the VM gets the rest of the hold as grace until it expires)."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"PK": _s(customer_pk(hold.customer_id)), "SK": _s(hold_sk(hold.hold_id))},
                "UpdateExpression": (
                    "SET amount_mt = :left, captured_mt = :captured, updated_at = :now"
                ),
                "ConditionExpression": "hold_status = :active AND amount_mt = :amount",
                "ExpressionAttributeValues": {
                    ":left": _n(hold.amount_mt - captured_mt),
                    ":captured": _n(hold.captured_mt + captured_mt),
                    ":now": _s(now),
                    ":active": _s(ACTIVE),
                    ":amount": _n(hold.amount_mt),
                },
            }
        }

    def capture_hold(
        self,
        *,
        hold: Hold,
        cost_mt: int,
        usage_mt_by_action: Mapping[str, int],
        scope: str,
        canonical_request: str,
        cause: Mapping[str, AttributeValue],
        keep_remaining: bool = False,
        next_hold: NewHold | None = None,
    ) -> Capture:
        """Capture usage from an active hold in one transaction: the usage entry, the hold
        settled (its rest released) or shrunk, and optionally the next hold placed.

        Usage beyond the hold comes from available tokens; if they do not cover it (plus
        any next hold), nothing happens: InsufficientTokens.
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
        need = cost_mt + held_delta
        condition = "attribute_exists(PK)"
        values: dict[str, AttributeValue] = {}
        if need > 0:
            condition += " AND available_mt >= :need"
            values[":need"] = _n(need)
        now = self._clock()
        hold_part = (
            self._shrink_hold(hold, captured_mt=from_hold, now=now)
            if keep_remaining
            else self._close_hold(
                hold, status="settled", captured_mt=from_hold, released_mt=released, now=now
            )
        )
        extra: list[Mapping[str, Any]] = [hold_part]
        if next_hold:
            extra.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": self._hold_item(
                            hold.customer_id,
                            next_hold,
                            request_hash(next_hold.canonical_request),
                            now,
                        ),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        counters = {"used_mt": cost_mt} | {
            usage_counter(action): mt for action, mt in usage_mt_by_action.items()
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
                cause={**cause, "hold_id": _s(hold.hold_id)},
                extra_items=extra,
                held_delta_mt=held_delta,
                record_index=2,
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
                "ExpressionAttributeValues": {":shard": _s(f"HOLDS#{shard}"), ":now": _s(now_iso)},
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
