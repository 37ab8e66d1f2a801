"""reconcile: the daily check of every account against its ledger, holds and orders.
Read-only; each difference is logged and counted in `ReconciliationDifferences`, which
an alarm watches."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.observability import MetricUnit, logger, metrics, publish_metrics
from token_billing.domain.reconcile import reconcile
from token_billing.runtime import dynamodb_client, table_name

dynamodb_client()  # create the DynamoDB client during init, not on the first event


@publish_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = reconcile(dynamodb_client(), table_name())
    for finding in report.findings:
        logger.error("reconciliation difference", extra={"finding": finding.line()})
    metrics.add_metric(
        name="ReconciliationDifferences", unit=MetricUnit.Count, value=len(report.findings)
    )
    logger.info("reconciled", extra={"customers": report.customers, "items": report.items})
    return {
        "customers": report.customers,
        "items": report.items,
        "differences": [finding.line() for finding in report.findings],
    }
