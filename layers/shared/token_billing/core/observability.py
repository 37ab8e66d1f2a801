"""The one place the Powertools Logger and Metrics are created; everything imports these.

Service name and metric namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE, set per function in template.yaml. Tracer is not created here
(Lambda's active tracing records each invocation instead): it loads the AWS X-Ray SDK, in
maintenance mode since 2026-02-25, whose import costs about 0.6x of the cold-start floor
(`make bench`, reference `stack_tracer`), four times the debit function's whole budget.
"""

from __future__ import annotations

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit

logger = Logger()
metrics = Metrics()

__all__ = ["MetricUnit", "logger", "metrics"]
