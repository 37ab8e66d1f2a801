"""LedgerDrift on DynamoDB Local's real stream: every ledger write (credit, debit, hold,
settle, release, clawback) passes; an ACCOUNT update that bypasses the ledger is counted
and logged in the batch that carries it, and the full reconciliation over the table's
export names that customer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ledger_stream_handler
import pytest
from debit_handler import lambda_handler as debit_handler

from local import dynamodb_local
from tests.conftest import fake_context
from tests.integration.helpers import fund
from tests.integration.test_ledger_stream import stream_records
from token_billing.store.ledger import Ledger
from token_billing.store.table_layout import customer_pk
from tools.reconcile import export_findings
from tools.table_export import export_local_table

pytestmark = pytest.mark.integration

TABLE = "LedgerTable"


def account_key(customer_id: str) -> dict[str, Any]:
    return {"PK": {"S": customer_pk(customer_id)}, "SK": {"S": "ACCOUNT"}}


def op(payload: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = debit_handler(payload, fake_context())
    assert reply["ok"] is True, reply
    return reply


def deliver_one_batch(
    records: list[dict[str, Any]],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> tuple[int, list[Any]]:
    """Hand every record to the handler in one batch: the LedgerDrift it published (its
    EMF line) and the drift it logged."""
    capfd.readouterr()
    caplog.clear()
    reply = ledger_stream_handler.lambda_handler({"Records": records}, fake_context())
    assert reply == {"batchItemFailures": []}  # drift is counted, never fails a record
    drift = 0
    for line in capfd.readouterr().out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            value = json.loads(line).get("LedgerDrift", 0)
            drift += sum(value) if isinstance(value, list) else int(value)
    return drift, [r for r in caplog.records if r.getMessage() == "ledger drift"]


def test_every_kind_of_ledger_write_passes_the_drift_check(
    ddb_local: dynamodb_local.DynamoDBLocal,
    ledger: Ledger,
    customer_id: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fund(ledger, customer_id, 100_000)
    op(
        {
            "customer_id": customer_id,
            "idempotency_key": "d1",
            "usage": [{"action": "api_call", "quantity": 3}],
        }
    )
    hold = {"customer_id": customer_id, "amount": 10, "expires_in_s": 900}
    op({"op": "hold", "hold_id": "h1", **hold})
    op(
        {
            "op": "settle",
            "customer_id": customer_id,
            "hold_id": "h1",
            "usage": [{"action": "vm_runtime", "quantity": 2}],
        }
    )
    op({"op": "hold", "hold_id": "h2", **hold})
    op(
        {
            "op": "renew",
            "customer_id": customer_id,
            "hold_id": "h2",
            "next_hold_id": "h3",
            "amount": 5,
            "expires_in_s": 900,
            "usage": [{"action": "screenshot", "quantity": 1}],
        }
    )
    op({"op": "release", "customer_id": customer_id, "hold_id": "h3"})
    ledger.clawback(
        customer_id=customer_id,
        idempotency_key="refund:ch_1:100",
        amount_mt=1_000,
        canonical_request="refund:ch_1:100",
        cause={"order_id": "ord_x", "reason": "refund"},
    )
    records = stream_records(ddb_local, customer_id)
    assert len(records) == 8

    assert deliver_one_batch(records, capfd, caplog) == (0, [])


def test_an_account_update_that_bypasses_the_ledger_raises_ledger_drift_in_its_batch(
    ddb_local: dynamodb_local.DynamoDBLocal,
    tmp_path: Path,
    ledger: Ledger,
    customer_id: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = ddb_local.client()
    fund(ledger, customer_id, 50_000)
    op(
        {
            "customer_id": customer_id,
            "idempotency_key": "d1",
            "usage": [{"action": "api_call", "quantity": 1}],
        }
    )
    # Tokens added by hand, version and available moved too: only the recorded change tells.
    client.update_item(
        TableName=TABLE,
        Key=account_key(customer_id),
        UpdateExpression="ADD balance_mt :x, available_mt :x, version :one",
        ExpressionAttributeValues={":x": {"N": "1000000"}, ":one": {"N": "1"}},
    )
    op(
        {
            "customer_id": customer_id,
            "idempotency_key": "d2",
            "usage": [{"action": "api_call", "quantity": 1}],
        }
    )
    records = stream_records(ddb_local, customer_id)
    assert len(records) == 4  # grant, debit, the planted update, debit

    drift, logged = deliver_one_batch(records, capfd, caplog)

    assert drift == 1
    (entry,) = logged
    assert entry.customer_id == customer_id
    assert entry.version == 3
    assert "balance moved by 1000000 mt, the write recorded -100 mt" in entry.reasons

    # and the full reconciliation over the table's export names the customer
    export = export_local_table(client, TABLE, tmp_path)
    (finding,) = [f for f in export_findings(export) if f.customer_id == customer_id]
    assert finding.check == "balance = sum of entries"
    assert (finding.expected, finding.actual) == ("49800", "1049800")
