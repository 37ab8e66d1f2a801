"""Section 6, cost model: DynamoDB requests and request units per operation, counted from the
requests the code actually sends and priced by AWS's published rules (bench/dynamo_units.py),
not by DynamoDB Local's ConsumedCapacity.

The client the code sends through is wrapped on its instance: every call is recorded with
its items. For items a request changes in place (Update, Delete, ConditionCheck) the item is
read before and after on a separate client, since an UpdateItem is charged for the larger
of the two images. A GSI write is charged from the before and after images by AWS's index
rules (bench/dynamo_units.py): a put when a write gives an item the index's keys (the
sparse `ledger-by-time` holds entries only, `active-holds` active holds only), a delete
when it takes them away (a hold settled or released), an update when only projected
attributes change, each 1 WRU per started KB of the index entry.

A Query is charged for the items it reads, not the ones it returns: DynamoDB applies a
FilterExpression after reading (and charging for) every item the key condition and Limit
reach. So each recorded Query is sent again on the probe client without its filter or
projection, and its read units come from the sizes of those items, summed and rounded up
to 4 KB as one read (half for an eventually consistent one). A BatchGetItem is charged per
key it processed, each as a GetItem of the whole item (a projection reads it all; a missing
item still costs the minimum); keys it returned unprocessed are not charged.

A cancelled transaction (a refusal, a replay) is counted the way the README's cost table
says the benchmark counts it: 2 write units per started KB of every item it names,
pessimistically (AWS bills a cancelled transaction's condition reads; the exact charge is
not published per item), and no GSI write.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bench.dynamo_units import (
    Consistency,
    SecondaryIndex,
    item_size,
    read_units,
    secondary_indexes,
    write_units,
)
from bench.harness import (
    THREE_LINES,
    FakeLambdaContext,
    Handler,
    Harness,
    patched,
    rewrite_strings,
    thousand_lines,
)
from bench.hold_latency import HOLD_MINUTES, RENEW_MINUTES, SETTLE_MINUTES, Payloads
from bench.report import Row, SectionResult
from bench.stats import fmt_ratio, ratio
from local.template import ROOT, load_template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

SECTION = "6 cost model"
PRICE_PER_MILLION_WRU = 0.625
PRICE_PER_MILLION_RRU = 0.125
PRICE_BASIS = (
    "us-east-1, on-demand, Standard table class: $0.625 per million write request units, "
    "$0.125 per million read request units (on-demand prices effective 2024-11-01; "
    "check aws.amazon.com/dynamodb/pricing before quoting)"
)
RECORDED_METHODS = (
    "transact_write_items",
    "update_item",
    "put_item",
    "delete_item",
    "get_item",
    "batch_get_item",
    "query",
)


@dataclass
class Charge:
    what: str
    size: int
    write: float = 0.0
    read: float = 0.0


@dataclass
class Request:
    operation: str
    outcome: str
    charges: list[Charge] = field(default_factory=list)

    @property
    def write(self) -> float:
        return sum(charge.write for charge in self.charges)

    @property
    def read(self) -> float:
        return sum(charge.read for charge in self.charges)


def _label(item_or_key: Mapping[str, Any]) -> str:
    from token_billing.store.table_layout import HOLD_PREFIX

    sort_key = item_or_key.get("SK", {}).get("S", "")
    if sort_key.startswith(HOLD_PREFIX):
        return "HOLD"
    return sort_key.split("#", 1)[0] or "item"


class Recorder:
    """Records every DynamoDB call sent through one client instance, with its charges."""

    def __init__(self, client: DynamoDBClient, probe: DynamoDBClient, table: str) -> None:
        self.client = client
        self.probe = probe
        self.tables = load_template().tables()
        assert table in self.tables, f"{table} is not a table of template.yaml"
        self.requests: list[Request] = []

    def _indexes(self, table: str) -> list[SecondaryIndex]:
        return secondary_indexes(self.tables[table])

    def _key(self, table: str, item: Mapping[str, Any]) -> dict[str, Any]:
        names = [key["AttributeName"] for key in self.tables[table]["KeySchema"]]
        return {name: item[name] for name in names}

    def _index_charges(
        self, table: str, label: str, before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> list[Charge]:
        return [
            Charge(f"GSI {index.name} {write.kind} of {label}", write.size, write.units)
            for index in self._indexes(table)
            for write in index.writes(before, after)
        ]

    def _image(self, table: str, key: Mapping[str, Any]) -> dict[str, Any]:
        response = self.probe.get_item(TableName=table, Key=key, ConsistentRead=True)
        return dict(response.get("Item", {}))

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[Request]]:
        self.requests = []
        with contextlib.ExitStack() as stack:
            for name in RECORDED_METHODS:
                stack.enter_context(
                    patched(self.client, name, self._wrap(name, getattr(self.client, name)))
                )
            yield self.requests

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(**kwargs: Any) -> Any:
            if name == "transact_write_items":
                return self._transaction(method, kwargs)
            if name in {"update_item", "put_item", "delete_item"}:
                return self._single_write(name, method, kwargs)
            if name == "batch_get_item":
                return self._batch_get(method, kwargs)
            return self._read(name, method, kwargs)

        return recorded

    def _transaction(self, method: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        actions = []
        for action in kwargs["TransactItems"]:
            ((kind, body),) = action.items()
            key = body.get("Key") or self._key(body["TableName"], body["Item"])
            actions.append((kind, body, self._image(body["TableName"], key), key))
        request = Request("TransactWriteItems", "ok")
        try:
            response = method(**kwargs)
        except ClientError as error:
            request.outcome = error.response.get("Error", {}).get("Code", "error")
            for kind, body, before, key in actions:
                size = item_size(body["Item"]) if kind == "Put" else item_size(before)
                request.charges.append(
                    Charge(
                        f"{kind} {_label(key)} (cancelled)",
                        size,
                        write_units(size, transactional=True),
                    )
                )
            self.requests.append(request)
            raise
        for kind, body, before, key in actions:
            if kind == "ConditionCheck":
                size = item_size(before)
                request.charges.append(
                    Charge(f"{kind} {_label(key)}", size, write_units(size, transactional=True))
                )
                continue
            after = (
                {}
                if kind == "Delete"
                else body["Item"]
                if kind == "Put"
                else self._image(body["TableName"], key)
            )
            size = max(item_size(before), item_size(after))
            request.charges.append(
                Charge(f"{kind} {_label(key)}", size, write_units(size, transactional=True))
            )
            request.charges += self._index_charges(body["TableName"], _label(key), before, after)
        self.requests.append(request)
        return response

    def _single_write(self, name: str, method: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        key = kwargs.get("Key") or self._key(kwargs["TableName"], kwargs["Item"])
        before = self._image(kwargs["TableName"], key)
        operation = {
            "update_item": "UpdateItem",
            "put_item": "PutItem",
            "delete_item": "DeleteItem",
        }[name]
        request = Request(operation, "ok")
        try:
            response = method(**kwargs)
        except ClientError as error:
            request.outcome = error.response.get("Error", {}).get("Code", "error")
            size = item_size(kwargs["Item"]) if name == "put_item" else item_size(before)
            request.charges.append(Charge(f"{_label(key)} (failed)", size, write_units(size)))
            self.requests.append(request)
            raise
        after = (
            kwargs["Item"] if name == "put_item" else self._image(kwargs["TableName"], key)
        )  # a deleted item reads back empty
        size = max(item_size(before), item_size(after))
        request.charges.append(Charge(_label(key), size, write_units(size)))
        request.charges += self._index_charges(kwargs["TableName"], _label(key), before, after)
        self.requests.append(request)
        return response

    def _batch_get(self, method: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        response = method(**kwargs)
        request = Request("BatchGetItem", "ok")
        # One charge per kind of key (found or missing), summed: a batch is up to 100 keys.
        by_label: dict[str, list[Charge]] = {}
        for table, asked in kwargs["RequestItems"].items():
            consistency: Consistency = "strong" if asked.get("ConsistentRead") else "eventual"
            unprocessed = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            for key in asked["Keys"]:
                if key in unprocessed:
                    continue
                size = item_size(self._image(table, key))
                label = _label(key) + ("" if size else " (none)")
                by_label.setdefault(label, []).append(
                    Charge(label, size, read=read_units(size, consistency))
                )
        for label, charges in by_label.items():
            request.charges.append(
                Charge(
                    f"BatchGet {len(charges)} x {label}",
                    sum(charge.size for charge in charges),
                    read=sum(charge.read for charge in charges),
                )
            )
        self.requests.append(request)
        return response

    def _read(self, name: str, method: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        response = method(**kwargs)
        consistency: Consistency = "strong" if kwargs.get("ConsistentRead") else "eventual"
        if name == "get_item":
            item = response.get("Item", {})
            size = item_size(item)
            charge = Charge(
                f"GetItem {_label(item or kwargs['Key'])}", size, read=read_units(size, consistency)
            )
            self.requests.append(Request("GetItem", "ok", [charge]))
        else:
            read = self.probe.query(**unfiltered(kwargs)).get("Items", [])
            size = sum(item_size(item) for item in read)
            returned = len(response.get("Items", []))
            where = kwargs.get("IndexName", "table")
            what = f"Query {where}: {len(read)} read, {returned} returned"
            charge = Charge(what, size, read=read_units(size, consistency))
            self.requests.append(Request("Query", "ok", [charge]))
        return response


PLACEHOLDER = re.compile(r"[#:][A-Za-z0-9_]+")


def unfiltered(query: Mapping[str, Any]) -> dict[str, Any]:
    """The same Query without what narrows its reply but not what it reads (the filter, the
    projection), and without the names and values only those used: what DynamoDB reads."""
    probe = {
        name: value
        for name, value in query.items()
        if name not in {"FilterExpression", "ProjectionExpression", "Select"}
    }
    used = set(PLACEHOLDER.findall(probe["KeyConditionExpression"]))
    for field_name in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
        kept = {key: value for key, value in probe.pop(field_name, {}).items() if key in used}
        if kept:
            probe[field_name] = kept
    return probe


BALANCES_FUNCTION = "BalancesFunction"
# The read rows: each sends the sample API Gateway event from events/balances (its customer
# swapped for the seeded one) through the built balances handler.
READER_DEBITS = 30
READER_ORDERS = 5
READER_USAGE_DAYS = 30
READS = (
    ("balance read (`GET .../tokens`)", "get-balance.json"),
    (
        "transactions page (`GET .../tokens/transactions?limit=20&kind=usage`)",
        "list-transactions.json",
    ),
    (
        "dashboard read (`GET .../dashboard`: balance, 10 transactions, 5 orders, 30 days)",
        "dashboard.json",
    ),
)
SAMPLE_CUSTOMER = "cust_demo"  # the customer of the events in events/balances


def seed_reader(harness: Harness, context: object) -> str:
    """A customer with a month of history, written outside any recording: a grant,
    READER_DEBITS usage debits, one active and one settled hold, READER_ORDERS orders with
    Checkout sessions, and READER_USAGE_DAYS days of usage aggregates."""
    from datetime import UTC, datetime, timedelta

    from token_billing.domain.catalog import CATALOG_VERSION, PACKAGES, RATES
    from token_billing.store.order_records import Order
    from token_billing.store.orders import OrderStore
    from token_billing.store.usage_aggregates import UsageAggregates

    reader = harness.customer("reader")
    harness.fund(reader, 10**12)
    for index in range(READER_DEBITS):
        reply = harness.handler(
            harness.debit_payload(reader, f"reader-{index}", THREE_LINES), context
        )
        assert reply.get("ok"), reply
    holds = Payloads(reader)
    for hold_id in ("reader-settled", "reader-active"):
        assert harness.handler(holds.hold(hold_id), context).get("ok")
    assert harness.handler(holds.settle("reader-settled"), context).get("ok")
    store = OrderStore(harness.bare_client, harness.table)
    now = datetime.now(UTC)
    for index in range(READER_ORDERS):
        package = PACKAGES["growth"]
        order = store.create(
            Order(
                order_id=f"ord_{harness.run_id}reader{index}",
                customer_id=reader,
                package_id=package.package_id,
                catalog_version=CATALOG_VERSION,
                price_cents=package.price_cents,
                currency="usd",
                tokens_mt=package.tokens_mt,
                bonus_mt=package.bonus_mt,
                status="pending",
                created_at=now.isoformat(),
            ),
            idempotency_key=None,
            request_hash="bench",
        )
        store.attach_session(
            order,
            session_id=f"cs_test_{'a' * 58}",
            checkout_url=f"https://checkout.stripe.com/c/pay/cs_test_{'a' * 58}#{'b' * 120}",
            expires_at=int(now.timestamp()) + 1800,
        )
    aggregates = UsageAggregates(harness.bare_client, harness.table)
    for days_ago in range(READER_USAGE_DAYS):
        aggregates.apply_delta(
            customer_id=reader,
            day=(now - timedelta(days=days_ago)).date(),
            version=days_ago + 1,
            delta_mt=dict.fromkeys(RATES, 1_000 * (days_ago + 1)),
            updated_at=now.isoformat(),
        )
    return reader


def api_event(file_name: str, customer_id: str) -> dict[str, Any]:
    """A sample HTTP API event of the balances function, for `customer_id`."""
    event = json.loads((ROOT / "events" / "balances" / file_name).read_text())
    replaced: dict[str, Any] = rewrite_strings(event, {SAMPLE_CUSTOMER: customer_id})
    return replaced


def api_call(handler: Handler, event: dict[str, Any], context: object) -> dict[str, Any]:
    reply = handler(event, context)
    assert reply.get("statusCode") == 200, reply
    return reply


def dollars_per_million(write: float, read: float) -> float:
    return write * PRICE_PER_MILLION_WRU + read * PRICE_PER_MILLION_RRU


@dataclass
class Priced:
    name: str
    requests: list[Request]
    per: int = 1  # operations the figures are divided by (lines, for the per-line row)

    @property
    def write(self) -> float:
        return sum(request.write for request in self.requests)

    @property
    def read(self) -> float:
        return sum(request.read for request in self.requests)

    @property
    def dollars(self) -> float:
        return dollars_per_million(self.write, self.read)

    def detail(self) -> str:
        parts = []
        for request in self.requests:
            charges = ", ".join(
                f"{charge.what} {charge.size} B: "
                + (f"{charge.write:g} WRU" if charge.write else f"{charge.read:g} RRU")
                for charge in request.charges
            )
            outcome = "" if request.outcome == "ok" else f" [{request.outcome}]"
            parts.append(f"{request.operation}{outcome}: {charges}")
        return "; ".join(parts)


# API Gateway WebSocket APIs, us-east-1: per million messages (metered in 32 KB units, a
# balance message is ~0.3 KB) and per million connection-minutes. Check before quoting.
PRICE_PER_MILLION_WS_MESSAGES = 1.00
PRICE_PER_MILLION_CONNECTION_MINUTES = 0.25


LIVE_BATCH_CUSTOMERS = 100  # a full stream batch of one change per customer, none watched


def live_balance_rows(
    harness: Harness, measure: Callable[[str, Callable[[], object]], None], busy: str
) -> None:
    """What the live balance (issue 14) adds: the stream function's one BatchGetItem of the
    watch markers of the customers changed in a batch (one customer, then a full batch of
    100, nobody watching), a watched customer's marker key and connections Query, and the
    route function's item writes. The PostToConnection itself is API Gateway's, priced in
    the notes."""
    from token_billing.store.connections import Connections

    sockets = Connections(harness.runtime_client, harness.table)
    watched = harness.customer("cost-live")
    idle = [harness.customer(f"cost-idle-{n}") for n in range(LIVE_BATCH_CUSTOMERS - 1)]
    measure(
        "live balance: watch marker read per customer changed per stream batch, nobody watching",
        lambda: sockets.watched([busy]),
    )
    measure(
        f"live balance: a stream batch of {LIVE_BATCH_CUSTOMERS} customers changed, nobody "
        "watching (one BatchGetItem)",
        lambda: sockets.watched([busy, *idle]),
    )
    measure(
        "WebSocket $connect: watch marker (conditional PutItem) + connection item (PutItem)",
        lambda: sockets.add(
            customer_id=watched, connection_id=f"{harness.run_id}-ws1", subject="bench"
        ),
    )
    measure(
        "live balance: a watched customer changed: its marker key + connections Query",
        lambda: [sockets.of_customer(c) for c in sockets.watched([watched]).customers],
    )
    measure(
        "WebSocket $connect while a marker as long stands (its Put refused) + connection item",
        lambda: sockets.add(
            customer_id=watched, connection_id=f"{harness.run_id}-ws2", subject="bench"
        ),
    )
    measure(
        "WebSocket $disconnect or GoneException: DeleteItem",
        lambda: sockets.remove(customer_id=watched, connection_id=f"{harness.run_id}-ws2"),
    )


# ---- per-VM daily limits and usage by VM (issue 25) ---------------------------------------

LIMIT_TOKENS = 10**6  # far above the rows' spending: they price the item, not a refusal
USAGE_READ_VMS = (10, 10_000)  # the customers the README states the usage read for
USAGE_DAYS = 30
BATCH_WRITE_ITEMS = 25


def vm_month_item(customer_id: str, month: str, vm_id: str, days: range) -> dict[str, Any]:
    """A VM-month usage item as the ledger stream leaves it after a month of daily use
    (`store.vm_usage`): one `dNN` per day, each a typical day's milli-tokens."""
    from token_billing.store.table_layout import customer_pk
    from token_billing.store.vm_usage import month_sk

    item: dict[str, Any] = {
        "PK": {"S": customer_pk(customer_id)},
        "SK": {"S": month_sk(month, vm_id)},
        "customer_id": {"S": customer_id},
        "month": {"S": month},
        "vm_id": {"S": vm_id},
        "updated_at": {"S": "2026-12-01T10:00:00.000000Z"},
    }
    for day in days:
        item[f"d{day:02d}"] = {"N": str(1_234_567 + day)}
    return item


def seed_vm_usage(harness: Harness, customer_id: str, vms: int) -> None:
    """`vms` VMs each used every day of the last USAGE_DAYS days, written outside any
    recording in batches (as the stream would have left them, without its thousands of
    transactions)."""
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    first = today - timedelta(days=USAGE_DAYS - 1)
    months: dict[str, range] = {}
    day = first
    while day <= today:
        month = day.isoformat()[:7]
        span = months.get(month)
        months[month] = range(span.start if span else day.day, day.day + 1)
        day += timedelta(days=1)
    items = [
        vm_month_item(customer_id, month, f"vm-{n:05d}", days)
        for month, days in months.items()
        for n in range(vms)
    ]
    for start in range(0, len(items), BATCH_WRITE_ITEMS):
        requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        pending: Any = {harness.table: requests}
        while pending:
            pending = harness.bare_client.batch_write_item(RequestItems=pending).get(
                "UnprocessedItems"
            )


def vm_limit_rows(
    harness: Harness,
    measure: Callable[[str, Callable[[], object]], None],
    op: Callable[..., Callable[[], object]],
    context: object,
) -> None:
    """What a customer with VM limits pays more per write (its VM's day counter, one item),
    the debit function's read of the limits (once per customer per container per 60 s),
    what the stream spends counting usage by VM, and the usage read for 10 and 10,000 VMs."""
    from token_billing import runtime
    from token_billing.store.vm_limits import VmLimitSettings, VmLimitStore
    from token_billing.store.vm_usage import VmUsageAggregates

    settings = VmLimitStore(harness.bare_client, harness.table)
    limited = harness.customer("cost-vm-limit")
    at_limit = harness.customer("cost-vm-at-limit")
    for customer, limit_tokens in ((limited, LIMIT_TOKENS), (at_limit, 1)):
        harness.fund(customer, 10**12)
        settings.put(customer, VmLimitSettings(limit_tokens * 1_000, {}), expected_version=0)
    measure(
        "VM limits: the debit function reads a customer's limits (once per customer per "
        "container per 60 s, never per debit)",
        lambda: runtime.default_vm_limits().get(limited),
    )
    runtime.default_vm_limits().get(at_limit)
    payload = harness.debit_payload(limited, "cost-vm-3", THREE_LINES)
    measure(
        "debit, 3 lines, VM under a daily limit (+ its day counter)",
        lambda: harness.handler(payload, context),
    )
    refused = harness.debit_payload(at_limit, "cost-vm-refused", THREE_LINES)
    measure(
        "debit refused: VM at its daily limit (+ the day's refusal mark, once per VM and day)",
        lambda: harness.handler(refused, context),
    )
    holds = Payloads(limited)
    ids = {slot: f"{harness.run_id}-cost-vm-hold-{slot}" for slot in "abc"}
    measure(
        "hold, VM under a daily limit (+ a ConditionCheck of its counter)", op(holds.hold(ids["a"]))
    )
    measure("settle, VM under a daily limit (+ its day counter)", op(holds.settle(ids["a"])))
    op(holds.hold(ids["b"]))()
    measure(
        "renew, VM under a daily limit (+ its day counter)", op(holds.renew(ids["b"], ids["c"]))
    )
    aggregates = VmUsageAggregates(harness.runtime_client, harness.table)
    from datetime import UTC, datetime

    measure(
        "usage by VM: the ledger stream counts one usage entry of one VM (marker Put + "
        "VM-month Update, one transaction)",
        lambda: aggregates.apply_entry(
            customer_id=limited,
            txn_id=f"txn_{harness.run_id}cost",
            day=datetime.now(UTC).date(),
            mt_by_vm={"vm-42": 7_700},
            updated_at="2026-12-01T10:00:00.000000Z",
        ),
    )
    balances = harness.function_handler(BALANCES_FUNCTION)
    for vms in USAGE_READ_VMS:
        reader = harness.customer(f"cost-vm-usage-{vms}")
        seed_vm_usage(harness, reader, vms)
        event = api_event("usage-by-vm.json", reader)
        measure(
            f"usage by VM read, {vms:,} VMs x {USAGE_DAYS} days (`GET .../tokens/usage`: VM-month "
            "Queries, the limits, today's counters)",
            functools.partial(api_call, balances, event, context),
        )


def limits_known(*customers: str) -> None:
    """The debit function's container has read these customers' VM limits (none), as any
    container has after its first op for them: the rows price each op, not that read."""
    from token_billing import runtime

    for customer in customers:
        runtime.default_vm_limits().get(customer)


def run(harness: Harness, *, progress: Callable[[str], None]) -> SectionResult:
    from token_billing.domain.catalog import CATALOG_VERSION, PACKAGES

    result = SectionResult()
    recorder = Recorder(harness.runtime_client, harness.bare_client, harness.table)
    context = FakeLambdaContext()
    ledger = harness.handler_ledger
    priced: list[Priced] = []

    def measure(name: str, action: Callable[[], object]) -> None:
        with recorder.recording() as requests:
            action()
        priced.append(Priced(name, list(requests)))

    def debit(
        customer: str, key: str, usage: list[dict[str, Any]], **extra: Any
    ) -> Callable[[], object]:
        payload = {**harness.debit_payload(customer, key, usage), **extra}
        return lambda: harness.handler(payload, context)

    rich = harness.customer("cost")
    harness.fund(rich, 10**12)
    poor = harness.customer("cost-poor")
    harness.fund(poor, 1)
    floor_customer = harness.customer("cost-upd")
    harness.fund(floor_customer, 10**9)
    cost_mt = harness.price_mt(THREE_LINES)
    limits_known(rich, poor)

    def floor() -> object:
        return harness.runtime_client.update_item(
            TableName=harness.table,
            Key={"PK": {"S": f"CUST#{floor_customer}"}, "SK": {"S": "ACCOUNT"}},
            UpdateExpression="ADD balance_mt :neg",
            ConditionExpression="available_mt >= :x",
            ExpressionAttributeValues={":neg": {"N": str(-cost_mt)}, ":x": {"N": str(cost_mt)}},
        )

    measure("floor: one conditional UpdateItem", floor)
    measure("debit, 3 lines", debit(rich, "cost-3", THREE_LINES))
    measure(
        "debit, 3 lines, `return_balance: true`",
        debit(rich, "cost-rb", THREE_LINES, return_balance=True),
    )
    lines = thousand_lines()
    measure("debit, 1,000 lines", debit(rich, "cost-1000", lines))
    measure("debit refused (insufficient tokens)", debit(poor, "cost-refused", THREE_LINES))
    measure("debit replayed (same key)", debit(rich, "cost-3", THREE_LINES))
    growth = PACKAGES["growth"]
    measure(
        "credit purchase (`Ledger.credit_purchase`, growth pack)",
        lambda: ledger.credit_purchase(
            customer_id=rich,
            order_id=f"ord_{harness.run_id}cost",
            package_id=growth.package_id,
            tokens_mt=growth.tokens_mt,
            bonus_mt=growth.bonus_mt,
            catalog_version=CATALOG_VERSION,
        ),
    )
    measure(
        "grant (`Ledger.grant`)",
        lambda: ledger.grant(
            customer_id=rich,
            idempotency_key="cost-grant",
            amount_mt=1_000_000,
            reason="support credit",
            granted_by="bench",
        ),
    )
    holder = harness.customer("cost-hold")
    harness.fund(holder, 10**12)
    limits_known(holder)
    holds = Payloads(holder)

    def op(payload: dict[str, Any], *, renewed: bool = True) -> Callable[[], object]:
        def call() -> object:
            reply = harness.handler(payload, context)
            assert reply.get("ok"), reply
            assert payload["op"] != "renew" or reply.get("renewed") is renewed, reply
            return reply

        return call

    hold_ids = {slot: f"{harness.run_id}-cost-hold-{slot}" for slot in "abc"}
    measure(f"hold ({HOLD_MINUTES} tokens)", op(holds.hold(hold_ids["a"])))
    measure(
        f"settle ({SETTLE_MINUTES} min of a {HOLD_MINUTES}-token hold, the rest released)",
        op(holds.settle(hold_ids["a"])),
    )
    op(holds.hold(hold_ids["b"]))()
    measure(
        f"renew ({RENEW_MINUTES} min used, next {HOLD_MINUTES}-token hold placed)",
        op(holds.renew(hold_ids["b"], hold_ids["c"])),
    )
    measure("release (nothing captured)", op(holds.release(hold_ids["c"])))
    # Funded for the first hold and 5 tokens more: the next hold cannot be covered, so the
    # renew captures the usage and keeps the old hold (shrunk) as the VM's grace.
    short = harness.customer("cost-hold-short")
    harness.fund(short, (HOLD_MINUTES + 5) * 1_000)
    limits_known(short)
    short_holds = Payloads(short)
    op(short_holds.hold(hold_ids["a"]))()
    measure(
        "renew refused (next hold not covered: usage captured, old hold kept as grace)",
        op(short_holds.renew(hold_ids["a"], hold_ids["b"]), renewed=False),
    )
    live_balance_rows(harness, measure, rich)
    vm_limit_rows(harness, measure, op, context)
    reader = seed_reader(harness, context)
    balances = harness.function_handler(BALANCES_FUNCTION)
    for name, event_file in READS:
        measure(name, functools.partial(api_call, balances, api_event(event_file, reader), context))
    progress("cost model: priced")

    base = priced[0]
    for entry in priced:
        is_floor = entry is base
        result.rows.append(
            Row(
                SECTION,
                entry.name,
                f"{len(entry.requests)} request(s), {entry.write:g} WRU + {entry.read:g} RRU = "
                f"${entry.dollars:.3f} per million",
                "(the floor)"
                if is_floor
                else f"{base.write:g} WRU = ${base.dollars:.3f} per million",
                fmt_ratio(ratio(entry.dollars, base.dollars)),
            )
        )
        result.notes.append(f"Cost, {entry.name}: {entry.detail()}")
    thousand = next(entry for entry in priced if entry.name == "debit, 1,000 lines")
    result.rows.append(
        Row(
            SECTION,
            "debit, 1,000 lines: per usage line",
            f"{thousand.write / 1_000:.3f} WRU = ${thousand.dollars / 1_000:.4f} per million lines",
            f"{base.write:g} WRU = ${base.dollars:.3f} per million",
            fmt_ratio(ratio(thousand.dollars / 1_000, base.dollars)),
        )
    )
    result.notes.append(
        "Cost: units follow AWS's published rules (transactional write 2 WRU per started KB "
        "per item; UpdateItem charged for the larger of before/after; a GSI 1 WRU per "
        "started KB of its entry (keys + listed attributes) for each put, delete or update "
        "a write makes in it: `ledger-by-time` a put per entry, `active-holds` a put per "
        "hold placed and a delete per hold closed; strongly consistent GetItem 1 RRU per "
        "started 4 KB; a Query the items it reads before any filter, summed, 1 RRU per "
        "started 4 KB, half when eventually consistent), not DynamoDB Local's "
        "ConsumedCapacity. The read rows' customer has a grant, "
        f"{READER_DEBITS} debits, an active and a settled hold, {READER_ORDERS} orders with "
        f"Checkout sessions and {READER_USAGE_DAYS} days of usage aggregates. "
        f"Prices: {PRICE_BASIS}. Not included: storage, PITR, streams reads by consumers."
    )
    result.notes.append(
        "Cost, live balance: per stream batch the stream function sends one BatchGetItem "
        "(strongly consistent: a socket opened just before the change hears of it) of the "
        "watch markers of every customer changed (up to 100 keys a request), and a "
        "connections Query only for customers with an unexpired marker. DynamoDB charges a "
        "BatchGetItem per key, each as a GetItem (1 RRU, found or not), so with nobody "
        "watching a customer changed costs 1 RRU per batch however many of its changes the "
        "batch holds, and a batch costs one request however many customers it holds; a "
        "watched customer adds its Query. Per message "
        f"API Gateway charges ${PRICE_PER_MILLION_WS_MESSAGES:.2f} per million messages "
        f"(32 KB units) and ${PRICE_PER_MILLION_CONNECTION_MINUTES:.2f} per million "
        "connection-minutes (us-east-1; check before quoting); the debit path is unchanged."
    )
    result.notes.append(
        "Cost, per-VM daily limits (issue 25): a customer without limits sends the same one "
        "transaction as the rows above (the debit function learns it with the limits read "
        "row, once per customer per container per 60 s); a VM under a limit adds its day "
        "counter to the write (an Update, or a ConditionCheck for a hold, counted like a "
        "transactional write). Usage by VM is the ledger stream's: one transaction per usage "
        "entry (a marker Put and an Update per VM it names); its read is one eventually "
        f"consistent Query per month the {USAGE_DAYS}-day window touches (here "
        "two), reading each VM's month item once, plus the limits and today's counters."
    )
    result.notes.append(
        "Cost, credit purchase: `Ledger.credit_purchase` alone (2 items). The Stripe webhook "
        "adds its order items to the same transaction (each +2 WRU per started KB)."
    )
    return result
