"""The full reconciliation's resources (issue 27): the export's Glue table agrees with the
SQL and the export's layout, the Athena workgroup is bounded and encrypted, and the state
machine's role allows exactly what its states call, each on its own resource."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from local.template import ROOT, load_template
from token_billing.domain.catalog import RATES
from token_billing.store import export_queries
from token_billing.store.export_queries import (
    EXPORT_ITEM_ATTRIBUTES,
    QUERIES,
    USAGE_ACTIONS,
    export_item_hive_type,
)

RESOURCES = load_template().resources
SQL = Path(export_queries.__file__).parent / "sql"
MACHINE = RESOURCES["ReconciliationStateMachine"]["Properties"]


def machine_statements() -> list[dict[str, Any]]:
    return [s for policy in MACHINE["Policies"] for s in policy["Statement"]]


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def allowed(action: str) -> list[Any]:
    return [s["Resource"] for s in machine_statements() if action in actions(s)]


def test_the_glue_table_reads_what_the_sql_reads_where_the_export_writes() -> None:
    table = RESOURCES["LedgerExportTable"]["Properties"]["TableInput"]
    (column,) = table["StorageDescriptor"]["Columns"]
    assert column == {"Name": "item", "Type": export_item_hive_type()}
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == (
        "org.openx.data.jsonserde.JsonSerDe"
    )
    assert table["PartitionKeys"] == [{"Name": "export_id", "Type": "string"}]
    parameters = table["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.export_id.type"] == "injected"
    prefix = MACHINE["Definition"]["States"]["StartExport"]["Parameters"]["S3Prefix"]
    assert parameters["storage.location.template"] == {
        "Fn::Sub": f"s3://${{ReconciliationBucket}}/{prefix}/AWSDynamoDB/${{!export_id}}/data/"
    }
    # every attribute ledger_items.sql reads is declared, and nothing else
    read = set(re.findall(r"item\.(\w+)\.", (SQL / "ledger_items.sql").read_text()))
    assert read == {name.lower() for name, _ in EXPORT_ITEM_ATTRIBUTES}


def test_usage_actions_are_the_catalogs_in_the_schema_and_every_query() -> None:
    assert set(USAGE_ACTIONS) == set(RATES)
    for name in ("ledger_items", "report_usage"):
        text = (SQL / f"{name}.sql").read_text()
        assert all(action in text for action in USAGE_ACTIONS), name


def test_every_query_of_the_folder_is_run_and_only_those() -> None:
    files = {path.stem for path in SQL.glob("*.sql")}
    assert files == {query.name for query in QUERIES} | {"ledger_items"}


def test_the_workgroup_bounds_every_query_and_encrypts_its_results() -> None:
    group = RESOURCES["ReconciliationWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert group["BytesScannedCutoffPerQuery"] == {"Ref": "ReconciliationBytesScannedCutoff"}
    assert group["EnforceWorkGroupConfiguration"] is True
    results = group["ResultConfiguration"]
    assert results["OutputLocation"] == {"Fn::Sub": "s3://${ReconciliationBucket}/results/"}
    assert results["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    bucket = RESOURCES["ReconciliationBucket"]["Properties"]
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireExports"]["Prefix"] == "exports/"
    assert rules["ExpireResults"]["Prefix"] == "results/"
    assert bucket["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True


def test_the_state_machine_may_do_what_its_states_do_on_their_resources_only() -> None:
    states = MACHINE["Definition"]["States"]
    map_states = states["RunQueries"]["Iterator"]["States"]
    resources = {
        state["Resource"]
        for state in [*states.values(), *map_states.values()]
        if "Resource" in state
    }
    assert resources == {
        "arn:aws:states:::aws-sdk:dynamodb:exportTableToPointInTime",
        "arn:aws:states:::aws-sdk:dynamodb:describeExport",
        "arn:aws:states:::lambda:invoke",
        "arn:aws:states:::athena:startQueryExecution.sync",
    }
    assert allowed("dynamodb:ExportTableToPointInTime") == [{"Fn::GetAtt": ["LedgerTable", "Arn"]}]
    assert allowed("dynamodb:DescribeExport") == [{"Fn::Sub": "${LedgerTable.Arn}/export/*"}]
    assert allowed("lambda:InvokeFunction") == [{"Fn::GetAtt": ["ReconcileFunction", "Arn"]}]
    workgroup = {
        "Fn::Sub": "arn:${AWS::Partition}:athena:${AWS::Region}:${AWS::AccountId}"
        ":workgroup/${ReconciliationWorkGroup}"
    }
    for action in (
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:StopQueryExecution",
    ):
        assert allowed(action) == [workgroup]
    assert allowed("s3:PutObject") == [
        {"Fn::Sub": "${ReconciliationBucket.Arn}/exports/*"},
        {"Fn::Sub": "${ReconciliationBucket.Arn}/results/*"},
    ]
    for statement in machine_statements():
        if statement["Resource"] == "*":  # only vended logs' delivery actions name no resource
            assert all(action.startswith("logs:") for action in actions(statement))
        assert all(not action.endswith("*") for action in actions(statement))


def test_the_run_is_scheduled_daily_bounded_and_alarmed() -> None:
    (event,) = MACHINE["Events"].values()
    assert event["Type"] == "ScheduleV2"
    assert event["Properties"]["ScheduleExpression"] == "rate(1 day)"
    assert MACHINE["Definition"]["TimeoutSeconds"] == 86400
    assert MACHINE["Tracing"] == {"Enabled": True}
    alarm = RESOURCES["ReconciliationRunFailedAlarm"]["Properties"]
    assert alarm["MetricName"] == "ExecutionsFailed"
    assert alarm["Dimensions"] == [
        {"Name": "StateMachineArn", "Value": {"Ref": "ReconciliationStateMachine"}}
    ]
    assert RESOURCES["ReconciliationDifferencesAlarm"]["Properties"]["MetricName"] == (
        "ReconciliationDifferences"
    )
    assert RESOURCES["LedgerDriftAlarm"]["Properties"]["MetricName"] == "LedgerDrift"


def test_the_layer_never_ships_duckdb() -> None:
    layer = (ROOT / "layers" / "shared" / "requirements.txt").read_text().lower()
    assert "duckdb" not in layer
    assert "duckdb==" in (ROOT / "requirements" / "dev.txt").read_text()
