"""The full reconciliation over an export of DynamoDB Local, in DynamoDB's export format,
checked by DuckDB with the SQL Athena runs: it finds exactly what the table Scan finds on a
10,000-entry table, and the finance reports add up to what a hand-made history says."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from local import dynamodb_local
from token_billing.domain.payments import apply_clawback, credit_order
from token_billing.domain.reconcile import reconcile
from token_billing.store.export_queries import QUERIES
from token_billing.store.ledger import Ledger
from token_billing.store.order_records import Order
from token_billing.store.orders import OrderStore
from token_billing.store.records import UsageCause
from tools.export_duckdb import open_export, run_query
from tools.generate_export import ANOMALY_CHECK, anomaly_of, generated_items
from tools.reconcile import export_findings
from tools.table_export import export_local_table

pytestmark = pytest.mark.integration

CUSTOMERS = 1_010  # x 10 entries (less the credits of planted uncredited orders)
ANOMALY_EVERY = 100


def fresh_table(ddb: dynamodb_local.DynamoDBLocal, suffix: str) -> str:
    return dynamodb_local.create_tables(ddb.client(), suffix=suffix)["LedgerTable"]


def batch_write(client: Any, table: str, items: Iterator[dict[str, Any]]) -> int:
    """Put items 25 to a BatchWriteItem, four requests side by side; how many."""
    batches: list[list[dict[str, Any]]] = [[]]
    for item in items:
        if len(batches[-1]) == 25:
            batches.append([])
        batches[-1].append({"PutRequest": {"Item": item}})

    def write(batch: list[dict[str, Any]]) -> None:
        pending = {table: batch}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, batches))
    return sum(len(batch) for batch in batches)


@pytest.fixture(scope="module")
def generated_table(ddb_local: dynamodb_local.DynamoDBLocal) -> str:
    table = fresh_table(ddb_local, "Generated")
    items = generated_items(0, CUSTOMERS, entries=10, anomaly_every=ANOMALY_EVERY, seed=7)
    batch_write(ddb_local.client(), table, items)
    return table


def comparable(finding: Any) -> tuple[str, str, str]:
    """What both reconciliations state alike: who, which check, and for the account checks
    the figures (the order checks word their figures differently)."""
    if finding.check.startswith(("balance", "held", "available")):
        return finding.customer_id, finding.check, f"{finding.expected}/{finding.actual}"
    return finding.customer_id, finding.check, ""


def test_duckdb_over_the_export_finds_exactly_what_the_table_scan_finds(
    ddb_local: dynamodb_local.DynamoDBLocal, generated_table: str, tmp_path: Path
) -> None:
    client = ddb_local.client()
    scan = reconcile(client, generated_table)
    export = export_local_table(client, generated_table, tmp_path)
    entries = sum(1 for _ in _entries(client, generated_table))
    assert entries >= 10_000

    found = export_findings(export)

    assert sorted(map(comparable, found)) == sorted(map(comparable, scan.findings))
    planted = {
        (f"cust_{index:08d}", ANOMALY_CHECK[kind])
        for index in range(CUSTOMERS)
        if (kind := anomaly_of(index, ANOMALY_EVERY))
    }
    assert {(f.customer_id, f.check) for f in found} == planted
    assert len(planted) == CUSTOMERS // ANOMALY_EVERY


def _entries(client: Any, table: str) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "begins_with(SK, :txn)",
        "ExpressionAttributeValues": {":txn": {"S": "TXN#"}},
        "ProjectionExpression": "PK",
    }
    while True:
        response = client.scan(**kwargs)
        yield from response["Items"]
        if "LastEvaluatedKey" not in response:
            return
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def test_writes_after_the_export_time_are_left_to_the_next_run(
    ddb_local: dynamodb_local.DynamoDBLocal, tmp_path: Path
) -> None:
    """An export is not transactionally consistent around its export time: a customer
    written at or after it is not judged on it."""
    table = fresh_table(ddb_local, "Unsettled")
    client = ddb_local.client()
    late = Ledger(client, table, clock=lambda: "2999-01-01T00:00:00.000000Z")
    late.grant(
        customer_id="cust_late", idempotency_key="g", amount_mt=5, reason="r", granted_by="t"
    )
    client.update_item(
        TableName=table,
        Key={"PK": {"S": "CUST#cust_late"}, "SK": {"S": "ACCOUNT"}},
        UpdateExpression="ADD balance_mt :x",
        ExpressionAttributeValues={":x": {"N": "1"}},
    )
    export = export_local_table(client, table, tmp_path)
    assert [f for f in reconcile(client, table).findings if f.customer_id == "cust_late"]

    assert export_findings(export) == []


# ---- the finance reports on a history whose figures are worked out by hand --------------


def order(
    customer_id: str, order_id: str, package: str, price_cents: int, tokens: int, bonus: int
) -> Order:
    return Order(
        order_id=order_id,
        customer_id=customer_id,
        package_id=package,
        catalog_version="2026-11-01",
        price_cents=price_cents,
        currency="usd",
        tokens_mt=tokens * 1_000,
        bonus_mt=bonus * 1_000,
        status="pending",
        created_at="2026-03-01T09:00:00.000000Z",
    )


def test_reports_add_up_to_the_hand_made_history(
    ddb_local: dynamodb_local.DynamoDBLocal, tmp_path: Path
) -> None:
    table = fresh_table(ddb_local, "Reports")
    client = ddb_local.client()
    store = OrderStore(client, table)

    def ledger_at(moment: str) -> Ledger:
        return Ledger(client, table, clock=lambda: moment)

    def buy(draft: Order, at: str) -> Order:
        created = store.create(draft, idempotency_key=None, request_hash="r")
        credit_order(
            ledger_at(at),
            created,
            [store.paid_transition(created, payment_intent_id=None, session_id=None)],
        )
        paid = store.get(created.customer_id, created.order_id)
        assert paid is not None
        assert paid.status == "paid"
        return paid

    def use(customer: str, key: str, at: str, by_action: dict[str, int]) -> None:
        ledger_at(at).debit(
            customer_id=customer,
            idempotency_key=key,
            amount_mt=sum(by_action.values()),
            canonical_request=key,
            usage=UsageCause(lines=[], mt_by_action=by_action),
        )

    # A: Growth ($49, 6,000 + 500 bonus) in March, 100 tokens granted in April, 3,000 used.
    buy(order("cust_a", "ord_a1", "growth", 4_900, 6_000, 500), "2026-03-02T10:00:00.000000Z")
    ledger_at("2026-04-01T10:00:00.000000Z").grant(
        customer_id="cust_a", idempotency_key="g", amount_mt=100_000, reason="r", granted_by="t"
    )
    use(
        "cust_a",
        "u1",
        "2026-04-02T10:00:00.000000Z",
        {"vm_runtime": 2_000_000, "api_call": 500_000},
    )
    use("cust_a", "u2", "2026-05-02T10:00:00.000000Z", {"vm_runtime": 500_000})
    # B: Starter ($19, 2,000) in March, half refunded (1,000 tokens clawed back), 250 used.
    starter = buy(
        order("cust_b", "ord_b1", "starter", 1_900, 2_000, 0), "2026-03-02T11:00:00.000000Z"
    )
    apply_clawback(
        starter,
        store,
        ledger_at("2026-03-03T10:00:00.000000Z"),
        key="refund:ch_b:950",
        refunded_cents=950,
        disputed_cents=None,
    )
    use("cust_b", "u1", "2026-04-05T10:00:00.000000Z", {"screenshot": 250_000})

    export = export_local_table(client, table, tmp_path)
    connection = open_export(export)
    results = {
        query.name: run_query(connection, query, settled_before=export.export_time).as_dicts()
        for query in QUERIES
    }

    assert results["check_accounts"] == results["check_orders"] == []
    outstanding = {row["customer_id"]: row for row in results["report_outstanding"]}
    # A: the grant (newest) is whole, 3,500 of Growth's 6,500 tokens are left:
    # 4,900 x 3,500 / 6,500 = 2,638.46 -> 2,638 cents.
    assert outstanding["cust_a"] == {
        "customer_id": "cust_a",
        "purchased_mt": 6_000_000,
        "bonus_mt": 500_000,
        "granted_mt": 100_000,
        "used_mt": 3_000_000,
        "clawed_back_mt": 0,
        "outstanding_mt": 3_600_000,
        "outstanding_purchased_mt": 3_500_000,
        "outstanding_paid_cents": 2_638,
    }
    # B: the lot is 1,000 tokens for 950 cents after the refund; 750 left: 712.5 -> 712.
    assert outstanding["cust_b"]["outstanding_mt"] == 750_000
    assert outstanding["cust_b"]["clawed_back_mt"] == 1_000_000
    assert outstanding["cust_b"]["outstanding_purchased_mt"] == 750_000
    assert outstanding["cust_b"]["outstanding_paid_cents"] == 712
    assert outstanding["(all)"]["outstanding_mt"] == 4_350_000
    assert outstanding["(all)"]["outstanding_paid_cents"] == 2_638 + 712
    assert next(iter(outstanding)) == "(all)"

    sales = {(row["period_kind"], row["period"]): row for row in results["report_sales"]}
    assert sales[("day", "2026-03-02")]["orders"] == 2
    assert sales[("month", "2026-03")] == {
        "period_kind": "month",
        "period": "2026-03",
        "currency": "usd",
        "orders": 2,
        "tokens_mt": 8_000_000,
        "bonus_mt": 500_000,
        "price_cents": 6_800,
    }
    usage = {(row["usage_month"], row["action"]): row["used_mt"] for row in results["report_usage"]}
    assert usage == {
        ("2026-04", "vm_runtime"): 2_000_000,
        ("2026-04", "api_call"): 500_000,
        ("2026-04", "screenshot"): 250_000,
        ("2026-05", "vm_runtime"): 500_000,
    }
