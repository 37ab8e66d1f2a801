"""Usage by VM (issue 25): tokens per VM per UTC day, written by the ledger stream from the
usage entries it sees inserted, read by the usage route. Nothing on the debit path.

    PK          SK                          item
    CUST#<id>   VMUSE#<YYYY-MM>#<vm key>     d<DD>: milli-tokens of that day (01..31), vm_id
                                            (absent for lines that name no VM: key "~"),
                                            month, updated_at
    CUST#<id>   VMUSEDONE#<txn_id>#<part>   marker: this entry's usage (part) is counted;
                                            DynamoDB's TTL drops it after 3 days

One item per VM and month keeps a read bounded by the VMs, not by the debits: a window of up
to 31 days is one Query per month it touches (at most two), reading each VM's month item
once (~0.1 KB + ~9 B per day used; a month of daily use ~0.4 KB).

Exactly once: an entry's INSERT may be delivered more than once (a retried batch), and an
entry has no version to order it by, so each entry's counts move in one transaction with
the Put of a marker keyed by the entry: a redelivery finds its marker and adds nothing. An
entry naming more VMs than a transaction holds is applied in parts of up to
`VMS_PER_TRANSACTION`, each with its own marker.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from token_billing.core.errors import ServiceUnavailable
from token_billing.store.codecs import AttributeValue, attr_n, attr_s, item_int
from token_billing.store.table_layout import customer_pk
from token_billing.store.transactions import (
    RETRYABLE_CANCELLATION_CODES,
    RETRYABLE_ERROR_CODES,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

VM_USAGE_PREFIX = "VMUSE#"
APPLIED_PREFIX = "VMUSEDONE#"
NO_VM_KEY = "~"  # not a VM id: those start with a letter or digit
VMS_PER_TRANSACTION = 99  # + the marker: DynamoDB's 100 items
MARKER_RETENTION_S = 3 * 24 * 3600  # the stream keeps records 24 h
APPLY_ATTEMPTS = 5
BACKOFF_BASE_S = 0.02
# A month's Query reads ~4 MB for 10,000 VMs (4 pages of 1 MB); the bound stops a runaway.
MAX_QUERY_PAGES = 40


def month_sk(month: str, vm_id: str | None) -> str:
    """A VM's item of one month (`YYYY-MM`); a month's items share a prefix."""
    return f"{VM_USAGE_PREFIX}{month}#{vm_id or NO_VM_KEY}"


def day_attribute(day: date) -> str:
    return f"d{day.day:02d}"


def months_between(first_day: date, last_day: date) -> list[str]:
    """The `YYYY-MM` of every month the window touches, oldest first."""
    months, year, month = [], first_day.year, first_day.month
    while (year, month) <= (last_day.year, last_day.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


class VmUsageAggregates:
    """Usage by VM and day of one ledger table."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._sleep = sleep

    def apply_entry(
        self,
        *,
        customer_id: str,
        txn_id: str,
        day: date,
        mt_by_vm: Mapping[str | None, int],
        updated_at: str,
    ) -> int:
        """Add one usage entry's milli-tokens per VM to their items of `day`; how many parts
        applied now (0: every part was counted before, a redelivery). Each part is one
        TransactWriteItems: the marker's Put (2 WRU) and an UpdateItem per VM (2 WRU per KB)."""
        assert mt_by_vm and all(mt > 0 for mt in mt_by_vm.values()), mt_by_vm
        vms = sorted(mt_by_vm.items(), key=lambda pair: pair[0] or NO_VM_KEY)
        applied = 0
        for part, start in enumerate(range(0, len(vms), VMS_PER_TRANSACTION)):
            chunk = vms[start : start + VMS_PER_TRANSACTION]
            items = [self._marker(customer_id, txn_id, part, updated_at)]
            items += [self._add(customer_id, day, vm_id, mt, updated_at) for vm_id, mt in chunk]
            applied += self._transact(items)
        return applied

    def _marker(self, customer_id: str, txn_id: str, part: int, now: str) -> dict[str, Any]:
        expires = int(time.time()) + MARKER_RETENTION_S
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    "PK": attr_s(customer_pk(customer_id)),
                    "SK": attr_s(f"{APPLIED_PREFIX}{txn_id}#{part}"),
                    "applied_at": attr_s(now),
                    "ttl_epoch": attr_n(expires),
                },
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }

    def _add(
        self, customer_id: str, day: date, vm_id: str | None, mt: int, now: str
    ) -> dict[str, Any]:
        month = day.isoformat()[:7]
        values: dict[str, AttributeValue] = {
            ":cid": attr_s(customer_id),
            ":month": attr_s(month),
            ":now": attr_s(now),
            ":mt": attr_n(mt),
        }
        sets = "customer_id = :cid, #month = :month, updated_at = :now"
        if vm_id is not None:
            sets += ", vm_id = :vm"
            values[":vm"] = attr_s(vm_id)
        return {
            "Update": {
                "TableName": self._table,
                "Key": {
                    "PK": attr_s(customer_pk(customer_id)),
                    "SK": attr_s(month_sk(month, vm_id)),
                },
                "UpdateExpression": f"SET {sets} ADD {day_attribute(day)} :mt",
                "ExpressionAttributeNames": {"#month": "month"},
                "ExpressionAttributeValues": values,
            }
        }

    def _transact(self, items: list[dict[str, Any]]) -> int:
        """1 when the part applied, 0 when its marker was there (counted before)."""
        for attempt in range(APPLY_ATTEMPTS):
            if attempt:
                self._sleep(random.uniform(0, BACKOFF_BASE_S * 2 ** (attempt - 1)))
            try:
                self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
            except ClientError as error:
                reasons = error.response.get("CancellationReasons", [])
                codes = [reason.get("Code", "None") for reason in reasons]
                if codes[:1] == ["ConditionalCheckFailed"]:
                    return 0
                code = error.response.get("Error", {}).get("Code", "")
                lost_race = code == "TransactionCanceledException" and any(
                    code in RETRYABLE_CANCELLATION_CODES for code in codes
                )
                if not lost_race and code not in RETRYABLE_ERROR_CODES:
                    raise
            else:
                return 1
        raise ServiceUnavailable("usage by VM: the aggregate kept conflicting; retried later")

    def usage(
        self, customer_id: str, first_day: date, last_day: date
    ) -> dict[str | None, dict[date, int]]:
        """Milli-tokens per VM (None: lines naming no VM) per day from `first_day` to
        `last_day`, both included. One Query per month touched, eventually consistent (the
        stream lags the ledger by a second anyway): 0.5 RRU per 4 KB of VM-month items."""
        if first_day > last_day:
            raise ValueError(f"first_day {first_day} is after last_day {last_day}")
        found: dict[str | None, dict[date, int]] = {}
        for month in months_between(first_day, last_day):
            for item in self._month_items(customer_id, month):
                vm_id = item["vm_id"]["S"] if "vm_id" in item else None
                year, month_number = int(month[:4]), int(month[5:])
                for name in item:
                    if len(name) == 3 and name[0] == "d" and name[1:].isdigit():
                        day = date(year, month_number, int(name[1:]))
                        if first_day <= day <= last_day:
                            days = found.setdefault(vm_id, {})
                            days[day] = days.get(day, 0) + item_int(item, name)
        return found

    def _month_items(self, customer_id: str, month: str) -> Iterator[Mapping[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": attr_s(customer_pk(customer_id)),
                ":prefix": attr_s(f"{VM_USAGE_PREFIX}{month}#"),
            },
            "ConsistentRead": False,
        }
        for _ in range(MAX_QUERY_PAGES):
            response = self._client.query(**kwargs)
            yield from response.get("Items", [])
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return
            kwargs["ExclusiveStartKey"] = last_key
        raise RuntimeError(f"usage by VM of {customer_id!r} exceeded {MAX_QUERY_PAGES} pages")
