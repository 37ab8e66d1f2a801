"""`make reconcile`: the full reconciliation on one machine, the same SQL as AWS runs in
Athena: export the dev server's DynamoDB Local table in DynamoDB's export format and check
it with DuckDB (`tools.export_duckdb`). Reports every difference and changes nothing; exits
1 when it finds any. `--report` also prints the finance reports (`make report`).

    .venv/bin/python -m tools.reconcile                      # the dev server's DynamoDB Local
    .venv/bin/python -m tools.reconcile --export-dir DIR     # an export already on disk (one
                                                             # copied from S3, or generated)
    .venv/bin/python -m tools.reconcile --scan [--aws --table <name>]   # the table Scan, for
                                                             # small tables (the old check)
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from local.dynamodb_local import LOCAL_CREDENTIALS, LOCAL_REGION
from token_billing.domain.reconcile import Finding
from token_billing.store.export_queries import CHECK, QUERIES, REPORT
from tools.export_duckdb import LocalExport, QueryResult, find_export, open_export, run_query
from tools.table_export import export_local_table, local_client

REPORT_ROWS_SHOWN = 20


def finding_of(row: dict[str, object]) -> Finding:
    """A row of a check query as the Scan-based reconciliation's Finding."""
    return Finding(
        customer_id=str(row["customer_id"]),
        check=str(row["check_name"]),
        expected=str(row["expected_mt"]),
        actual=str(row["actual_mt"]),
        detail=str(row["detail"] or ""),
    )


def export_findings(export: LocalExport, *, memory_limit: str = "4GB") -> list[Finding]:
    """Every difference the check queries find in an export on disk."""
    connection = open_export(export, memory_limit=memory_limit)
    try:
        return [
            finding_of(row)
            for query in QUERIES
            if query.purpose == CHECK
            for row in run_query(connection, query, settled_before=export.export_time).as_dicts()
        ]
    finally:
        connection.close()


def print_report(result: QueryResult, out_dir: Path) -> None:
    """The first rows of a report on the terminal, all of them in `<out_dir>/<name>.csv`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.name}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    print(f"\n== {result.name}: {len(result.rows)} rows (all in {path})")
    widths = [
        max(
            len(str(value))
            for value in [name, *(row[i] for row in result.rows[:REPORT_ROWS_SHOWN])]
        )
        for i, name in enumerate(result.columns)
    ]
    for row in [tuple(result.columns), *result.rows[:REPORT_ROWS_SHOWN]]:
        print("  ".join(str(value).rjust(width) for value, width in zip(row, widths, strict=True)))


def scan_reconcile(args: argparse.Namespace) -> int:
    """The table Scan in one process (`domain.reconcile`): fine for a small table."""
    import boto3

    from token_billing.domain.reconcile import reconcile

    if args.aws:
        client = boto3.client("dynamodb")
    else:
        client = boto3.client(
            "dynamodb",
            endpoint_url=args.endpoint,
            region_name=LOCAL_REGION,
            aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
        )
    report = reconcile(client, args.table)
    for finding in report.findings:
        print(finding.line())
    print(
        f"{report.customers} customers, {report.items} items checked: "
        + ("no differences" if report.clean else f"{len(report.findings)} difference(s)")
    )
    return 0 if report.clean else 1


def check_planted(findings: list[Finding], planted_path: Path) -> bool:
    """For a generated export: the differences found are exactly those it planted."""
    planted = {(p["customer_id"], p["check"]) for p in json.loads(planted_path.read_text())}
    found = {(finding.customer_id, finding.check) for finding in findings}
    print(f"planted {len(planted)} differences; found exactly those: {found == planted}")
    return found == planted


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.reconcile", description=__doc__)
    parser.add_argument("--table", default="LedgerTable")
    parser.add_argument("--endpoint", default="http://127.0.0.1:8000", help="DynamoDB Local")
    parser.add_argument("--export-dir", type=Path, help="check this export instead")
    parser.add_argument("--report", action="store_true", help="print the finance reports too")
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB's, beyond it spills")
    parser.add_argument("--scan", action="store_true", help="the Scan-based check instead")
    parser.add_argument("--aws", action="store_true", help="--scan a deployed table")
    args = parser.parse_args(argv)
    if args.scan:
        return scan_reconcile(args)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ledger-export-") as scratch:
        if args.export_dir:
            export = find_export(args.export_dir)
        else:
            export = export_local_table(local_client(args.endpoint), args.table, Path(scratch))
            print(f"exported {export.item_count} items of {args.table} ({args.endpoint})")
        connection = open_export(export, memory_limit=args.memory_limit)
        loaded_s = time.monotonic() - started
        print(f"read {export.item_count} items into ledger_items in {loaded_s:.1f} s")
        findings: list[Finding] = []
        for query in QUERIES:
            query_started = time.monotonic()
            result = run_query(connection, query, settled_before=export.export_time)
            print(
                f"{query.name}: {len(result.rows)} rows in {time.monotonic() - query_started:.1f} s"
            )
            if query.purpose == CHECK:
                findings.extend(finding_of(row) for row in result.as_dicts())
            elif args.report and query.purpose == REPORT:
                print_report(result, (args.export_dir or Path(".local")) / "reports")
        connection.close()
    for finding in findings:
        print(finding.line())
    print(
        f"{export.item_count} items of export {export.export_id} checked: "
        + (f"{len(findings)} difference(s)" if findings else "no differences")
    )
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"wall time {time.monotonic() - started:.1f} s, peak RSS {peak_rss_mb:.0f} MB")
    if args.export_dir and (args.export_dir / "planted.json").exists():
        return 0 if check_planted(findings, args.export_dir / "planted.json") else 1
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
