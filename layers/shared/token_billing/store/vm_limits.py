"""A customer's per-VM daily limits (issue 25): one settings item, and the mark a limited
VM's day counter gets when the VM is first refused that day.

    PK          SK                    item
    CUST#<id>   LIMITS#VM             default_daily_limit_mt (absent: none), limits_mt (M:
                                      vm_id -> N, or NULL: no limit for that VM), version,
                                      updated_at, updated_by
    CUST#<id>   VMDAY#<day>#<vm_id>   spent_mt (moved by the ledger's transactions), and
                                      limit_reached_at once a write was refused that day

On the debit function's import path (it reads the settings once per customer per refresh
period, through `VmLimitsCache` below): no dataclasses, Protocols for the type checker only.
The rules the limits follow are `domain.vm_limits`'s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from token_billing.core.errors import Conflict, ServiceUnavailable
from token_billing.core.observability import logger
from token_billing.store.codecs import AttributeValue, Item, attr_n, attr_s, item_int, item_str
from token_billing.store.conditions import condition_failed
from token_billing.store.table_layout import VM_DAY_PREFIX, VM_LIMITS_SK, customer_pk, vm_day_sk
from token_billing.store.transactions import retryable_reads, vm_day_expiry_epoch

if TYPE_CHECKING:
    from typing import Protocol

    from mypy_boto3_dynamodb.client import DynamoDBClient

# A day's counters of 1,000 limited VMs are ~0.2 MB: one page; the bound stops a runaway.
MAX_COUNTER_PAGES = 10


class VmLimitSettings:
    """A customer's limits: the default for every VM, and per-VM overrides (None: that VM
    has no limit, whatever the default). Milli-tokens a UTC day. A plain slotted class:
    this module is on the debit function's import path."""

    __slots__ = (
        "default_daily_limit_mt",
        "limits_mt",
        "updated_at",
        "updated_by",
        "version",
    )

    def __init__(
        self,
        default_daily_limit_mt: int | None,
        limits_mt: Mapping[str, int | None],
        version: int = 0,
        updated_at: str | None = None,
        updated_by: str | None = None,
    ) -> None:
        self.default_daily_limit_mt = default_daily_limit_mt
        self.limits_mt = limits_mt
        self.version = version
        self.updated_at = updated_at
        self.updated_by = updated_by

    def __repr__(self) -> str:
        return (
            f"VmLimitSettings({self.default_daily_limit_mt!r}, {dict(self.limits_mt)!r}, "
            f"version={self.version})"
        )

    @property
    def limits_anything(self) -> bool:
        return self.default_daily_limit_mt is not None or any(
            limit is not None for limit in self.limits_mt.values()
        )

    def limit_for(self, vm_id: str) -> int | None:
        """The VM's daily limit in milli-tokens, or None when it has none."""
        if vm_id in self.limits_mt:
            return self.limits_mt[vm_id]
        return self.default_daily_limit_mt

    def at_version(self, version: int) -> VmLimitSettings:
        """The same limits, as stored under `version`."""
        return VmLimitSettings(
            self.default_daily_limit_mt,
            self.limits_mt,
            version,
            self.updated_at,
            self.updated_by,
        )


class DayCounter:
    """A limited VM's counter of one day, as the ledger's transactions keep it. A plain
    class: this module is on the debit function's import path."""

    __slots__ = ("limit_reached", "spent_mt")

    def __init__(self, spent_mt: int, limit_reached: bool) -> None:
        self.spent_mt = spent_mt
        self.limit_reached = limit_reached


def settings_key(customer_id: str) -> Item:
    return {"PK": attr_s(customer_pk(customer_id)), "SK": attr_s(VM_LIMITS_SK)}


def settings_from_item(item: Mapping[str, AttributeValue]) -> VmLimitSettings:
    default = item.get("default_daily_limit_mt")
    limits: dict[str, int | None] = {
        vm_id: None if "NULL" in value else int(value["N"])
        for vm_id, value in item.get("limits_mt", {}).get("M", {}).items()
    }
    return VmLimitSettings(
        default_daily_limit_mt=int(default["N"]) if default else None,
        limits_mt=limits,
        version=item_int(item, "version"),
        updated_at=item_str(item, "updated_at"),
        updated_by=item_str(item, "updated_by"),
    )


class VmLimitStore:
    """The limits settings item and the limit-reached mark of the VMs' day counters."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, customer_id: str, *, consistent: bool = False) -> VmLimitSettings | None:
        """The customer's limits, or None when they never set any. Eventually consistent by
        default (0.5 RRU): the debit function re-reads it every refresh period anyway."""
        with retryable_reads():
            response = self._client.get_item(
                TableName=self._table, Key=settings_key(customer_id), ConsistentRead=consistent
            )
        item = response.get("Item")
        return settings_from_item(item) if item else None  # type: ignore[arg-type]

    def put(
        self, customer_id: str, settings: VmLimitSettings, *, expected_version: int
    ) -> VmLimitSettings:
        """Replace the limits if nobody changed them since `expected_version` was read (0:
        never set); Conflict otherwise, nothing written. The stored version is one more."""
        limits: Item = {
            vm_id: {"NULL": True} if limit is None else attr_n(limit)
            for vm_id, limit in sorted(settings.limits_mt.items())
        }
        item: Item = {
            **settings_key(customer_id),
            "customer_id": attr_s(customer_id),
            "limits_mt": {"M": limits},
            "version": attr_n(expected_version + 1),
        }
        if settings.default_daily_limit_mt is not None:
            item["default_daily_limit_mt"] = attr_n(settings.default_daily_limit_mt)
        for name in ("updated_at", "updated_by"):
            value = getattr(settings, name)
            if value is not None:
                item[name] = attr_s(value)
        condition = (
            "attribute_not_exists(version)" if expected_version == 0 else "version = :expected"
        )
        values = {} if expected_version == 0 else {":expected": attr_n(expected_version)}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),  # type: ignore[arg-type]
            )
        except ClientError as error:
            if condition_failed(error):
                raise Conflict(
                    "the VM limits changed while this request was decided; read them again"
                ) from None
            raise
        return settings.at_version(expected_version + 1)

    def counters_of_day(self, customer_id: str, day: str) -> dict[str, DayCounter]:
        """The counters of the customer's limited VMs for `day` (`YYYY-MM-DD`): one Query
        (eventually consistent, ~0.2 KB a VM), only VMs that spent or were refused."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": attr_s(customer_pk(customer_id)),
                ":prefix": attr_s(f"{VM_DAY_PREFIX}{day}#"),
            },
        }
        found: dict[str, DayCounter] = {}
        for _ in range(MAX_COUNTER_PAGES):
            response = self._client.query(**kwargs)
            for item in response.get("Items", []):
                vm_id = item_str(item, "vm_id")  # type: ignore[arg-type]
                if vm_id is not None:
                    found[vm_id] = DayCounter(
                        item_int(item, "spent_mt"),  # type: ignore[arg-type]
                        "limit_reached_at" in item,
                    )
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found

    def limit_event_put(self, customer_id: str, vm_id: str, day: str) -> bool:
        """Whether the VM's `VmLimitReached` of `day` was put (1 strongly consistent GetItem)."""
        response = self._client.get_item(
            TableName=self._table,
            Key={"PK": attr_s(customer_pk(customer_id)), "SK": attr_s(vm_day_sk(day, vm_id))},
            ConsistentRead=True,
            ProjectionExpression="event_put_at",
        )
        return "event_put_at" in response.get("Item", {})

    def mark_limit_event_put(self, customer_id: str, vm_id: str, day: str, at: str) -> None:
        """Note on the counter that its event was put (1 UpdateItem)."""
        self._client.update_item(
            TableName=self._table,
            Key={"PK": attr_s(customer_pk(customer_id)), "SK": attr_s(vm_day_sk(day, vm_id))},
            UpdateExpression="SET event_put_at = if_not_exists(event_put_at, :at)",
            ExpressionAttributeValues={":at": attr_s(at)},
        )

    def mark_limit_reached(
        self, *, customer_id: str, vm_id: str, day: str, limit_mt: int, reached_at: str
    ) -> bool:
        """Mark the VM's counter of `day` refused (1 conditional UpdateItem); False when it
        was marked before. The first mark of a VM and day is what the ledger stream turns
        into one `VmLimitReached` event."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"PK": attr_s(customer_pk(customer_id)), "SK": attr_s(vm_day_sk(day, vm_id))},
                UpdateExpression=(
                    "SET limit_reached_at = :at, customer_id = :cid, vm_id = :vm, #day = :day, "
                    "limit_mt = :limit, ttl_epoch = if_not_exists(ttl_epoch, :ttl)"
                ),
                ConditionExpression="attribute_not_exists(limit_reached_at)",
                ExpressionAttributeNames={"#day": "day"},
                ExpressionAttributeValues={
                    ":at": attr_s(reached_at),
                    ":cid": attr_s(customer_id),
                    ":vm": attr_s(vm_id),
                    ":day": attr_s(day),
                    ":limit": attr_n(limit_mt),
                    ":ttl": attr_n(vm_day_expiry_epoch(day)),
                },
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True


# The debit function re-reads a customer's limits at most this often (per container).
LIMITS_REFRESH_S = 60.0
# Customers whose limits one container keeps; the oldest are forgotten first.
CACHED_CUSTOMERS_MAX = 10_000


# ---- the debit function's copy of the limits -----------------------------------------

if TYPE_CHECKING:  # for the type checker only: a Protocol class costs the cold start

    class LimitsReader(Protocol):
        def get(self, customer_id: str) -> VmLimitSettings | None: ...

    class ReachedMarker(Protocol):
        def mark_limit_reached(
            self, *, customer_id: str, vm_id: str, day: str, limit_mt: int, reached_at: str
        ) -> bool: ...


class VmLimitsCache:
    """One container's copy of customers' limits: read once, then again only after
    `refresh_s`. A refresh that fails keeps the last limits read (a limit is safer stale
    than gone); a first read that fails is a retryable refusal."""

    def __init__(
        self,
        store: LimitsReader,
        *,
        refresh_s: float = LIMITS_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
        max_customers: int = CACHED_CUSTOMERS_MAX,
    ) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._clock = clock
        self._max = max_customers
        self._entries: dict[str, tuple[float, VmLimitSettings | None]] = {}
        self._reached: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()  # the dev server and tests run ops in threads

    def get(self, customer_id: str) -> VmLimitSettings | None:
        """The customer's limits (None: none at all), from this container's copy when it
        is younger than the refresh period."""
        now = self._clock()
        cached = self._entries.get(customer_id)
        if cached is not None and now - cached[0] < self._refresh_s:
            return cached[1]
        try:
            settings = self._store.get(customer_id)
        except ServiceUnavailable:
            if cached is None:
                raise
            logger.warning(
                "VM limits refresh failed; keeping the last read",
                extra={"customer_id": customer_id},
            )
            settings = cached[1]
        if settings is not None and not settings.limits_anything:
            settings = None
        with self._lock:
            self._entries.pop(customer_id, None)
            if len(self._entries) >= self._max:
                del self._entries[next(iter(self._entries))]
            self._entries[customer_id] = (now, settings)
        return settings

    def note_reached(
        self, marker: ReachedMarker, *, customer_id: str, refusal: Mapping[str, object], at: str
    ) -> bool:
        """Mark the VM's day refused, once per container per VM and day (the store's
        condition makes it once across containers); True when this call marked it."""
        vm_id, day, limit_mt = refusal["vm_id"], refusal["day"], refusal["limit_mt"]
        assert isinstance(vm_id, str) and isinstance(day, str) and isinstance(limit_mt, int)
        key = (customer_id, vm_id, day)
        with self._lock:
            if key in self._reached:
                return False
            if len(self._reached) >= self._max:
                self._reached.clear()
            self._reached.add(key)
        return marker.mark_limit_reached(
            customer_id=customer_id, vm_id=vm_id, day=day, limit_mt=limit_mt, reached_at=at
        )
