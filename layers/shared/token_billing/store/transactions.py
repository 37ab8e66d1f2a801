"""Running one ledger transaction: bounded retries of lost races, and what a cancellation
means (a replay of the first result, a refusal, a condition of another item failing).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from token_billing.core.errors import (
    CustomerNotFound,
    IdempotencyKeyReused,
    InsufficientTokens,
    ServiceUnavailable,
    VmLimitReached,
)
from token_billing.core.units import format_tokens
from token_billing.store.codecs import (
    Item,
    account_from_item,
    attr_n,
    attr_s,
    item_int,
    vm_day_key,
)
from token_billing.store.records import PostedEntry, VmDayLimit

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

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


@contextlib.contextmanager
def retryable_reads() -> Iterator[None]:
    """A read on the write path (the hold a settle captures, the balance after a debit)
    that stays throttled or unreachable after botocore's own retries is a retryable
    refusal, like a failed write: never an unhandled error."""
    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code", "") in RETRYABLE_ERROR_CODES:
            raise ServiceUnavailable("the ledger is busy; retry with the same ids") from error
        raise
    except (ConnectionError, HTTPClientError) as error:
        raise ServiceUnavailable("could not reach the ledger; retry with the same ids") from error


class LimitItem:
    """Where a transaction carries a VM's day counter, and what it checks (issue 25). A
    plain class: this module is on the debit function's import path."""

    __slots__ = ("day", "limit", "position", "resets_at")

    def __init__(self, limit: VmDayLimit, now: str, position: int) -> None:
        self.limit = limit
        self.position = position
        self.day = now[:10]  # the ledger writes moments as ISO 8601 UTC: YYYY-MM-DDT...Z
        next_day = date.fromisoformat(self.day) + timedelta(days=1)
        self.resets_at = f"{next_day.isoformat()}T00:00:00Z"


# A VM's day counter is read only on the day it counts; kept a few days more, then TTL.
VM_DAY_RETENTION_DAYS = 3


def vm_day_expiry_epoch(day: str) -> int:
    """When DynamoDB's TTL may drop a VM's counter of `day` (epoch seconds)."""
    expires = date.fromisoformat(day) + timedelta(days=1 + VM_DAY_RETENTION_DAYS)
    return (expires - date(1970, 1, 1)).days * 86_400


def vm_day_counter(table: str, customer_id: str, limit: LimitItem, now: str) -> dict[str, Any]:
    """The VM's counter of the write's own UTC day as a transaction item: an Update adding
    the spend, or a ConditionCheck when nothing is spent (a hold), under `spent_mt <= room`
    (`attribute_not_exists` passes a first spend that fits; a room below zero fails even
    then). What its refusal means is read below (`_raise_limit_refusal`)."""
    vm_limit = limit.limit
    condition = "spent_mt <= :room"
    if vm_limit.room_mt >= 0:
        condition = "attribute_not_exists(spent_mt) OR " + condition
    body: dict[str, Any] = {
        "TableName": table,
        "Key": vm_day_key(customer_id, limit.day, vm_limit.vm_id),
        "ConditionExpression": condition,
        "ExpressionAttributeValues": {":room": attr_n(vm_limit.room_mt)},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    if vm_limit.spend_mt == 0:
        return {"ConditionCheck": body}
    body["UpdateExpression"] = (
        "SET customer_id = :cid, vm_id = :vm, #day = :day, limit_mt = :limit, "
        "updated_at = :now, ttl_epoch = :ttl ADD spent_mt :spend"
    )
    body["ExpressionAttributeNames"] = {"#day": "day"}  # a reserved word
    body["ExpressionAttributeValues"] |= {
        ":cid": attr_s(customer_id),
        ":vm": attr_s(vm_limit.vm_id),
        ":day": attr_s(limit.day),
        ":limit": attr_n(vm_limit.limit_mt),
        ":now": attr_s(now),
        ":ttl": attr_n(vm_day_expiry_epoch(limit.day)),
        ":spend": attr_n(vm_limit.spend_mt),
    }
    return {"Update": body}


class ExtraConditionFailed(Exception):
    """A caller-supplied transaction item (index >= 2) failed its condition."""

    def __init__(self, index: int, current: Item | None) -> None:
        super().__init__(f"transaction item {index} failed its condition")
        self.index = index
        self.current = current


def run_transaction(
    client: DynamoDBClient,
    customer_id: str,
    transact_items: Sequence[Mapping[str, Any]],
    *,
    sleep: Callable[[float], None],
    entry_index: int | None,
    fingerprint: str,
    record_index: int | None = None,
    limit: LimitItem | None = None,
) -> PostedEntry | None:
    """Run one transaction with bounded retries of lost races. None when it committed;
    the first result when the entry at `entry_index` already existed (a replay).

    A failed condition on `record_index` (an idempotency record other than an entry,
    such as a hold) raises ExtraConditionFailed before any account refusal is read; one on
    the VM's day counter (`limit`) raises VmLimitReached, before an account refusal too: a
    VM at its limit stays refused whatever a top-up does."""
    assert len(transact_items) <= 100  # DynamoDB's transaction limit
    for attempt in range(TRANSACTION_ATTEMPTS):
        if attempt:
            _backoff(sleep, attempt)
        try:
            client.transact_write_items(TransactItems=transact_items)  # type: ignore[arg-type]
        except ClientError as error:
            outcome = _interpret_failure(
                error, customer_id, fingerprint, entry_index, record_index, limit
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
    error: ClientError,
    customer_id: str,
    fingerprint: str,
    entry_index: int | None,
    record_index: int | None = None,
    limit: LimitItem | None = None,
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
        return replay_of(reasons[entry_index].get("Item"), fingerprint)
    if record_index is not None and codes[record_index : record_index + 1] == [
        "ConditionalCheckFailed"
    ]:
        raise ExtraConditionFailed(record_index, reasons[record_index].get("Item"))
    at = limit.position if limit is not None else -1
    if limit is not None and codes[at : at + 1] == ["ConditionalCheckFailed"]:
        _raise_limit_refusal(limit, reasons[at].get("Item"))
    if reasons and codes[0] == "ConditionalCheckFailed":
        _raise_account_refusal(customer_id, reasons[0].get("Item"))
    for index in range(1, len(reasons)):
        if codes[index] == "ConditionalCheckFailed":
            raise ExtraConditionFailed(index, reasons[index].get("Item"))
    if any(code in RETRYABLE_CANCELLATION_CODES for code in codes):
        return None
    raise error


def replay_of(item: Item | None, fingerprint: str) -> PostedEntry:
    """The first result an existing entry records, if it answered the same request."""
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
        reply=item.get("reply", {}).get("S"),
    )


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


def _raise_limit_refusal(limit: LimitItem, item: Item | None) -> None:
    """The counter's state when the write was refused (ALL_OLD: no read)."""
    spent_mt = item_int(item or {}, "spent_mt")
    vm = limit.limit
    needed_mt = vm.spend_mt + vm.reserve_mt
    raise VmLimitReached(
        f"VM {vm.vm_id!r} has spent {format_tokens(spent_mt)} of its daily limit of "
        f"{format_tokens(vm.limit_mt)} tokens today and this request needs "
        f"{format_tokens(needed_mt)}; nothing moved. The limit resets at "
        f"{limit.resets_at}",
        vm_id=vm.vm_id,
        limit=format_tokens(vm.limit_mt),
        limit_mt=vm.limit_mt,
        spent_today=format_tokens(spent_mt),
        spent_today_mt=spent_mt,
        requested=format_tokens(needed_mt),
        requested_mt=needed_mt,
        day=limit.day,
        resets_at=limit.resets_at,
    )


def _backoff(sleep: Callable[[float], None], attempt: int) -> None:
    # Full jitter: spreads racing writers apart instead of colliding again in step.
    sleep(random.uniform(0, TRANSACTION_BACKOFF_BASE_S * 2 ** (attempt - 1)))
