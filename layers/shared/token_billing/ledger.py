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

from token_billing.errors import (
    CustomerNotFound,
    IdempotencyKeyReused,
    InsufficientTokens,
    ServiceUnavailable,
)
from token_billing.table_layout import (
    ACCOUNT_SK,
    ENTRY_PREFIX,
    customer_pk,
    entry_sk,
    transaction_id,
)
from token_billing.units import format_tokens

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


def _int(item: Item, name: str) -> int:
    value = item.get(name)
    return int(value["N"]) if value else 0


def _str(item: Item, name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value else None


def account_from_item(item: Item) -> Account:
    return Account(
        customer_id=item["customer_id"]["S"],
        balance_mt=_int(item, "balance_mt"),
        held_mt=_int(item, "held_mt"),
        available_mt=_int(item, "available_mt"),
        version=_int(item, "version"),
        purchased_mt=_int(item, "purchased_mt"),
        bonus_mt=_int(item, "bonus_mt"),
        granted_mt=_int(item, "granted_mt"),
        used_mt=_int(item, "used_mt"),
        clawed_back_mt=_int(item, "clawed_back_mt"),
        plan_tier=_str(item, "plan_tier"),
        created_at=_str(item, "created_at"),
        updated_at=_str(item, "updated_at"),
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
            scope=kind,
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
    ) -> PostedEntry:
        assert amount_mt != 0
        assert all(name in ACCOUNT_COUNTERS or USAGE_COUNTER.match(name) for name in counters)
        assert 2 + len(extra_items) <= 100  # DynamoDB's transaction limit
        txn_id = transaction_id(customer_id, scope, idempotency_key)
        fingerprint = request_hash(canonical_request)
        now = self._clock()
        pk = customer_pk(customer_id)

        adds = ["balance_mt :amount", "available_mt :amount", "version :one"]
        values: dict[str, AttributeValue] = {
            ":amount": _n(amount_mt),
            ":one": _n(1),
            ":zero": _n(0),
            ":now": _s(now),
            ":cid": _s(customer_id),
            **condition_values,
        }
        for index, (counter, value) in enumerate(sorted(counters.items())):
            adds.append(f"{counter} :c{index}")
            values[f":c{index}"] = _n(value)
        account_update: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"PK": _s(pk), "SK": _s(ACCOUNT_SK)},
            "UpdateExpression": (
                "SET updated_at = :now, customer_id = :cid, "
                "created_at = if_not_exists(created_at, :now), "
                "held_mt = if_not_exists(held_mt, :zero) "
                "ADD " + ", ".join(adds)
            ),
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if condition:
            account_update["ConditionExpression"] = condition
        entry: Item = {
            "PK": _s(pk),
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
        transact_items: list[Mapping[str, Any]] = [
            {"Update": account_update},
            {
                "Put": {
                    "TableName": self._table,
                    "Item": entry,
                    "ConditionExpression": "attribute_not_exists(PK)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            *extra_items,
        ]
        for attempt in range(TRANSACTION_ATTEMPTS):
            if attempt:
                self._backoff(attempt)
            try:
                self._client.transact_write_items(TransactItems=transact_items)  # type: ignore[arg-type]
            except ClientError as error:
                replayed = self._interpret_failure(error, customer_id, fingerprint)
                if replayed is not None:
                    return replayed
            except (ConnectionError, HTTPClientError) as error:
                # The write may or may not have landed; the same key makes a retry safe.
                raise ServiceUnavailable(
                    "could not reach the ledger; retry with the same idempotency key"
                ) from error
            else:
                return PostedEntry(txn_id, customer_id, kind, amount_mt, now, replayed=False)
        raise ServiceUnavailable("the ledger is busy; retry with the same idempotency key")

    def _interpret_failure(
        self, error: ClientError, customer_id: str, fingerprint: str
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
        if len(reasons) > 1 and codes[1] == "ConditionalCheckFailed":
            return self._replay(reasons[1].get("Item"), fingerprint)
        if reasons and codes[0] == "ConditionalCheckFailed":
            self._raise_account_refusal(customer_id, reasons[0].get("Item"))
        for index in range(2, len(reasons)):
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
