"""Reconciliation finds every kind of difference, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from local.dynamodb_local import DynamoDBLocal
from tests.conftest import fake_context
from tests.integration.helpers import fund
from token_billing.domain.reconcile import Finding, reconcile
from token_billing.store.ledger import Ledger
from token_billing.store.order_records import Order
from token_billing.store.orders import OrderStore, order_key
from token_billing.store.table_layout import customer_pk

pytestmark = pytest.mark.integration


def mine(client: Any, customer_id: str) -> list[Finding]:
    return [f for f in reconcile(client, "LedgerTable").findings if f.customer_id == customer_id]


def account_key(customer_id: str) -> dict[str, Any]:
    return {"PK": {"S": customer_pk(customer_id)}, "SK": {"S": "ACCOUNT"}}


def pending_order(store: OrderStore, customer_id: str, order_id: str) -> Order:
    draft = Order(
        order_id=order_id,
        customer_id=customer_id,
        package_id="starter",
        catalog_version="2026-11-01",
        price_cents=1_900,
        currency="usd",
        tokens_mt=2_000_000,
        bonus_mt=0,
        status="pending",
        created_at="2026-11-25T10:00:00.000000Z",
    )
    return store.create(draft, idempotency_key=None, request_hash="r")


def test_a_consistent_history_has_no_differences(
    ledger: Ledger, customer_id: str, ddb_local: DynamoDBLocal
) -> None:
    import debit_handler

    fund(ledger, customer_id, 50_000)
    debit_handler.lambda_handler(
        {
            "op": "hold",
            "customer_id": customer_id,
            "hold_id": "h",
            "amount": 10,
            "expires_in_s": 900,
        },
        fake_context(),
    )
    assert mine(ddb_local.client(), customer_id) == []


def test_a_tampered_balance_is_found_and_left_alone(
    ledger: Ledger, customer_id: str, ddb_local: DynamoDBLocal
) -> None:
    client = ddb_local.client()
    fund(ledger, customer_id, 50_000)
    client.update_item(
        TableName="LedgerTable",
        Key=account_key(customer_id),
        UpdateExpression="SET balance_mt = :forged, held_mt = :held",
        ExpressionAttributeValues={":forged": {"N": "9999999"}, ":held": {"N": "5"}},
    )
    checks = {f.check: f for f in mine(client, customer_id)}
    assert checks["balance = sum of entries"].expected == "50000"
    assert checks["balance = sum of entries"].actual == "9999999"
    assert "held = sum of active holds" in checks
    assert "available = balance - held" in checks
    item = client.get_item(TableName="LedgerTable", Key=account_key(customer_id))["Item"]
    assert item["balance_mt"]["N"] == "9999999"  # reported, not repaired


def test_a_paid_order_without_its_credit_is_found(
    ledger: Ledger, customer_id: str, ddb_local: DynamoDBLocal
) -> None:
    client = ddb_local.client()
    store = OrderStore(client, "LedgerTable")
    fund(ledger, customer_id, 1_000)
    order = pending_order(store, customer_id, "ord_000000000001lost")
    client.update_item(
        TableName="LedgerTable",
        Key=order_key(customer_id, order.order_id),
        UpdateExpression="SET #s = :paid, paid_at = :now",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":paid": {"S": "paid"}, ":now": {"S": "2026-11-25T10:05:00Z"}},
    )
    (finding,) = mine(client, customer_id)
    assert finding.check == "paid order credited once"
    assert order.order_id in finding.detail


def test_a_credit_without_a_paid_order_is_found(
    ledger: Ledger, customer_id: str, ddb_local: DynamoDBLocal
) -> None:
    ledger.credit_purchase(
        customer_id=customer_id,
        order_id="ord_000000000002ghost",
        package_id="pro",
        tokens_mt=15_000_000,
        bonus_mt=1_500_000,
        catalog_version="v",
    )
    (finding,) = mine(ddb_local.client(), customer_id)
    assert finding.check == "credit has a paid order"
    assert "16500000 mt" in finding.detail


def test_the_cli_names_the_customer_both_by_export_and_by_scan(
    ledger: Ledger, customer_id: str, ddb_local: DynamoDBLocal, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools import reconcile as cli

    ledger.credit_purchase(
        customer_id=customer_id,
        order_id="ord_x",
        package_id="starter",
        tokens_mt=1,
        bonus_mt=0,
        catalog_version="v",
    )
    assert cli.main(["--endpoint", ddb_local.endpoint]) == 1  # export + DuckDB (the default)
    out = capsys.readouterr().out
    assert f"{customer_id}: credit has a paid order" in out
    assert "items of export" in out
    assert cli.main(["--endpoint", ddb_local.endpoint, "--scan"]) == 1
    assert f"{customer_id}: credit has a paid order" in capsys.readouterr().out
