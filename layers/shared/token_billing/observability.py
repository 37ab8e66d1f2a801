"""The one place the Powertools Logger and Metrics are created; everything imports these.

Service name and metric namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE, set per function in template.yaml. Tracer is not created here:
its X-Ray SDK import costs ~40 ms of cold start, so the debit path never pays for it.
"""

from __future__ import annotations

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit

logger = Logger()
metrics = Metrics()

__all__ = ["MetricUnit", "logger", "metrics"]
