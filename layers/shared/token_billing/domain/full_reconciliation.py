"""The scheduled full reconciliation in AWS, on the table's export with Athena.

The state machine (template.yaml, `ReconciliationStateMachine`) starts a point-in-time
export of the table to S3 (no table capacity), waits for it, then asks the reconcile function
for the statements to run (`plan_queries`), runs each in Athena (the results land in S3) and
hands their execution ids back (`publish_outcome`): one count per check, the differences
named in the log, a metric per check and `ReconciliationDifferences` for the alarm.

An export is not transactionally consistent around its export time (DynamoDB's export
documentation gives a window of about a minute), so writes after `export time -
SETTLE_MARGIN` are left to the next run; the ledger stream's drift check covers them as
they happen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from token_billing.store.export_queries import CHECK, QUERIES, athena_statement

SETTLE_MARGIN = timedelta(minutes=5)
EPOCH_MS_ABOVE = 100_000_000_000  # epoch seconds reach this in the year 5138
FINDINGS_READ_MAX = 10_000  # rows read back per check query; the total count is exact
FINDINGS_LOGGED_MAX = 100
# One metric per check (the check_name column of check_accounts.sql / check_orders.sql).
CHECK_METRICS: Mapping[str, str] = {
    "account exists": "AccountsMissing",
    "balance = sum of entries": "BalanceMismatches",
    "held = sum of active holds": "HeldMismatches",
    "available = balance - held": "AvailableMismatches",
    "paid order credited once": "PaidOrdersNotCreditedOnce",
    "credit has a paid order": "CreditsWithoutPaidOrder",
}


class InvalidRun(ValueError):
    """The state machine handed over something this function does not understand."""


def export_id_of(export_arn: str) -> str:
    """`arn:...:table/<name>/export/<id>` -> `<id>`."""
    _, marker, export_id = export_arn.rpartition("/export/")
    if not marker or not export_id:
        raise InvalidRun(f"{export_arn!r} is not a table export's ARN")
    return export_id


def parse_export_time(value: object) -> datetime:
    """ExportTime as Step Functions passes it on: an ISO 8601 string, or epoch seconds or
    milliseconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > EPOCH_MS_ABOVE else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRun(f"ExportTime {value!r} is not an ISO 8601 timestamp") from None
        if moment.tzinfo is None:
            raise InvalidRun(f"ExportTime {value!r} carries no time zone")
        return moment.astimezone(UTC)
    raise InvalidRun(f"ExportTime {value!r} is neither a timestamp nor epoch seconds")


def settled_before(export_time: datetime) -> str:
    """The first moment whose writes are left to the next run, in the ledger's format."""
    moment = export_time.astimezone(UTC) - SETTLE_MARGIN
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def plan_queries(export: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every statement for one completed export (DescribeExport's ExportDescription)."""
    if export.get("ExportStatus") != "COMPLETED":
        raise InvalidRun(f"export status {export.get('ExportStatus')!r}, not COMPLETED")
    export_id = export_id_of(str(export.get("ExportArn", "")))
    before = settled_before(parse_export_time(export.get("ExportTime")))
    try:
        return [
            {
                "name": query.name,
                "purpose": query.purpose,
                "sql": athena_statement(query, export_id=export_id, settled_before=before),
            }
            for query in QUERIES
        ]
    except ValueError as error:  # an export id not shaped like DynamoDB's
        raise InvalidRun(str(error)) from None


class QueryResults(Protocol):
    """Reads a finished Athena query's results (`integrations.athena_results`)."""

    def row_count(self, query_execution_id: str) -> int | None: ...

    def rows(self, query_execution_id: str, *, limit: int) -> list[dict[str, str]]: ...


@dataclass
class Outcome:
    """What one run found: differences per check, a sample of them, bytes Athena read."""

    differences: int = 0
    by_check: Counter[str] = field(default_factory=Counter)
    findings: list[dict[str, str]] = field(default_factory=list)
    lower_bound: bool = False  # more differences than were read back to count by check
    bytes_scanned: int = 0
    reports: dict[str, str] = field(default_factory=dict)  # name -> query execution id


def publish_outcome(executions: Sequence[Mapping[str, Any]], results: QueryResults) -> Outcome:
    """Count the differences each check query returned and gather the report executions."""
    outcome = Outcome()
    known = {query.name: query.purpose for query in QUERIES}
    for execution in executions:
        name = str(execution.get("name"))
        execution_id = str(execution.get("query_execution_id") or "")
        if name not in known or not execution_id:
            raise InvalidRun(f"execution {dict(execution)!r} names no query of this service")
        outcome.bytes_scanned += int(execution.get("bytes_scanned") or 0)
        if known[name] != CHECK:
            outcome.reports[name] = execution_id
            continue
        total = results.row_count(execution_id)
        if total == 0:
            continue
        rows = results.rows(execution_id, limit=FINDINGS_READ_MAX)
        if total is None:  # no statistics: count what was read, never report fewer as none
            total = len(rows)
            outcome.lower_bound |= total == FINDINGS_READ_MAX
        outcome.differences += total
        outcome.lower_bound |= len(rows) < total
        outcome.by_check.update(row["check_name"] for row in rows)
        outcome.findings.extend(rows[: FINDINGS_LOGGED_MAX - len(outcome.findings)])
    return outcome
