"""The reconcile function's two steps of the state machine, Athena stubbed: the plan is the
SQL folder's statements for that export, and publishing counts, logs and meters what the
checks returned. Nothing reaches AWS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.conftest import fake_context, load_event
from token_billing.domain.full_reconciliation import (
    InvalidRun,
    export_id_of,
    parse_export_time,
    settled_before,
)
from token_billing.integrations import athena_results


@pytest.fixture
def athena(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("athena", region_name="us-east-1")
    monkeypatch.setattr(athena_results, "athena_client", lambda: client)
    import reconcile_handler

    monkeypatch.setattr(reconcile_handler, "athena_client", lambda: client)
    with Stubber(client) as stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def emf(out: str) -> dict[str, float]:
    """The metrics of the one EMF line printed (a value may come as a one-item list)."""
    (line,) = [line for line in out.splitlines() if '"_aws"' in line]
    document: dict[str, Any] = json.loads(line)
    names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    return {name: sum(v) if isinstance(v := document[name], list) else v for name in names}


def result_page(
    columns: list[str], rows: list[list[str]], token: str | None = None
) -> dict[str, Any]:
    page: dict[str, Any] = {
        "ResultSet": {
            "Rows": [
                {"Data": [{"VarCharValue": value} for value in row]} for row in [columns, *rows]
            ]
        }
    }
    if token:
        page["NextToken"] = token
    return page


def test_the_plan_is_every_query_of_the_folder_for_that_export(athena: Stubber) -> None:
    import reconcile_handler

    reply = reconcile_handler.lambda_handler(load_event("reconcile/plan.json"), fake_context())

    names = [query["name"] for query in reply["queries"]]
    assert names == [
        "check_accounts",
        "check_orders",
        "report_outstanding",
        "report_sales",
        "report_usage",
    ]
    for query in reply["queries"]:
        sql = query["sql"]
        assert sql.startswith("WITH ledger_items AS (")
        assert "export_id = '01795604400000-5f3a9c1e'" in sql
        assert "{" not in sql  # every placeholder filled
    # writes in the five minutes before the export time are left to the next run
    assert "'2026-11-25T10:55:00.000000Z'" in reply["queries"][0]["sql"]


def test_publish_counts_and_meters_each_check_and_names_the_customers(
    athena: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    import reconcile_handler

    event = load_event("reconcile/publish.json")
    accounts, orders = (e["query_execution_id"] for e in event["executions"][:2])
    columns = ["customer_id", "check_name", "expected_mt", "actual_mt", "detail"]
    athena.add_response(
        "get_query_runtime_statistics",
        {"QueryRuntimeStatistics": {"Rows": {"OutputRows": 2}}},
        {"QueryExecutionId": accounts},
    )
    athena.add_response(
        "get_query_results",
        result_page(
            columns,
            [
                ["cust_a", "balance = sum of entries", "5000", "6000", ""],
                ["cust_b", "held = sum of active holds", "0", "10", ""],
            ],
        ),
        {"QueryExecutionId": accounts, "MaxResults": 1000},
    )
    # no row statistics for this one: its rows are read and counted instead
    athena.add_response(
        "get_query_runtime_statistics", {"QueryRuntimeStatistics": {}}, {"QueryExecutionId": orders}
    )
    athena.add_response(
        "get_query_results",
        result_page(columns, [["cust_c", "credit has a paid order", "0", "2000000", "order o"]]),
        {"QueryExecutionId": orders, "MaxResults": 1000},
    )

    reply = reconcile_handler.lambda_handler(event, fake_context())

    assert reply["differences"] == 3
    assert reply["by_check"] == {
        "balance = sum of entries": 1,
        "held = sum of active holds": 1,
        "credit has a paid order": 1,
    }
    assert set(reply["reports"]) == {"report_outstanding", "report_sales", "report_usage"}
    assert reply["bytes_scanned"] == 5 * 171234567
    metrics = emf(capsys.readouterr().out)
    assert metrics["ReconciliationDifferences"] == 3.0
    assert metrics["BalanceMismatches"] == 1.0
    assert metrics["HeldMismatches"] == 1.0
    assert metrics["CreditsWithoutPaidOrder"] == 1.0
    assert "PaidOrdersNotCreditedOnce" not in metrics  # nothing counted, nothing published


def test_results_are_read_page_by_page_up_to_the_limit(athena: Stubber) -> None:
    columns = ["customer_id", "check_name"]
    athena.add_response(
        "get_query_results",
        result_page(columns, [["a", "x"], ["b", "x"]], token="t1"),
        {"QueryExecutionId": "q", "MaxResults": 4},
    )
    athena.add_response(
        "get_query_results",
        {"ResultSet": {"Rows": [{"Data": [{"VarCharValue": "c"}, {}]}]}},
        {"QueryExecutionId": "q", "MaxResults": 1, "NextToken": "t1"},
    )
    rows = athena_results.AthenaResults(athena_results.athena_client()).rows("q", limit=3)
    assert rows == [
        {"customer_id": "a", "check_name": "x"},
        {"customer_id": "b", "check_name": "x"},
        {"customer_id": "c", "check_name": ""},
    ]


@pytest.mark.parametrize(
    "event",
    [
        {"action": "nope"},
        {"action": "plan", "export": {"ExportStatus": "IN_PROGRESS"}},
        {
            "action": "plan",
            "export": {
                "ExportStatus": "COMPLETED",
                "ExportArn": "arn:x",
                "ExportTime": "2026-11-25T11:00:00Z",
            },
        },
        {
            "action": "plan",
            "export": {
                "ExportStatus": "COMPLETED",
                "ExportArn": "t/export/1-2",
                "ExportTime": "2026-11-25T11:00:00Z",
            },
        },
        {
            "action": "plan",
            "export": {
                "ExportStatus": "COMPLETED",
                "ExportArn": "t/export/01795604400000-5f3a9c1e",
                "ExportTime": "yesterday",
            },
        },
        {"action": "publish", "executions": [{"name": "drop_table", "query_execution_id": "q"}]},
        {"action": "publish"},
    ],
)
def test_anything_else_fails_the_step(athena: Stubber, event: dict[str, Any]) -> None:
    import reconcile_handler

    with pytest.raises(InvalidRun):
        reconcile_handler.lambda_handler(event, fake_context())


def test_export_arns_and_times() -> None:
    assert export_id_of("arn:aws:dynamodb:us-east-1:1:table/t/export/01795604400000-5f3a9c1e") == (
        "01795604400000-5f3a9c1e"
    )
    with pytest.raises(InvalidRun):
        export_id_of("arn:aws:dynamodb:us-east-1:1:table/t")
    assert settled_before(parse_export_time(1795604400)) == "2026-11-25T10:55:00.000000Z"
    assert settled_before(parse_export_time(1795604400_000)) == "2026-11-25T10:55:00.000000Z"
    assert (
        settled_before(parse_export_time("2026-11-25T11:00:00.000Z"))
        == "2026-11-25T10:55:00.000000Z"
    )
    with pytest.raises(InvalidRun):
        parse_export_time("2026-11-25T11:00:00")
