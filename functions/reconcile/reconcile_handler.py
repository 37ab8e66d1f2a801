"""reconcile: the reconcile state machine's two steps around Athena (issue 27).

- `{"action": "plan", "export": <DescribeExport's ExportDescription>}`: the statements to run
  over that export (`domain.full_reconciliation.plan_queries`);
- `{"action": "publish", "export_arn": ..., "executions": [{"name", "query_execution_id",
  "bytes_scanned"}, ...]}`: counts the differences each check returned, logs them (the
  first 100; all are in the query's result file in S3), and publishes a metric per check and
  `ReconciliationDifferences`, which an alarm watches.

Read-only: it changes nothing in the table. Anything it does not understand fails the step,
so the state machine's execution fails (alarmed).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.observability import count, logger, publish_metrics
from token_billing.domain.full_reconciliation import (
    CHECK_METRICS,
    InvalidRun,
    plan_queries,
    publish_outcome,
)
from token_billing.integrations.athena_results import AthenaResults, athena_client

athena_client()  # create the Athena client during init, not on the first event


@publish_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    action = event.get("action")
    if action == "plan":
        export = event.get("export")
        if not isinstance(export, dict):
            raise InvalidRun("plan needs the export's description")
        queries = plan_queries(export)
        logger.info(
            "planned", extra={"export_arn": export.get("ExportArn"), "queries": len(queries)}
        )
        return {"export_arn": export.get("ExportArn"), "queries": queries}
    if action == "publish":
        executions = event.get("executions")
        if not isinstance(executions, list):
            raise InvalidRun("publish needs the query executions")
        return publish(str(event.get("export_arn")), executions)
    raise InvalidRun(f"unknown action {action!r}: plan or publish")


def publish(export_arn: str, executions: list[dict[str, Any]]) -> dict[str, Any]:
    outcome = publish_outcome(executions, AthenaResults(athena_client()))
    for finding in outcome.findings:
        logger.error("reconciliation difference", extra={"export_arn": export_arn, **finding})
    if outcome.lower_bound:
        logger.warning(
            "more differences than were read back: counts per check are lower bounds",
            extra={"differences": outcome.differences},
        )
    count("ReconciliationDifferences", outcome.differences)
    for check, metric in CHECK_METRICS.items():
        count(metric, outcome.by_check[check])
    count("ReconciliationBytesScanned", outcome.bytes_scanned)
    logger.info(
        "reconciled",
        extra={
            "export_arn": export_arn,
            "differences": outcome.differences,
            "bytes_scanned": outcome.bytes_scanned,
            "reports": outcome.reports,
        },
    )
    return {
        "differences": outcome.differences,
        "by_check": dict(outcome.by_check),
        "bytes_scanned": outcome.bytes_scanned,
        "reports": outcome.reports,
    }
