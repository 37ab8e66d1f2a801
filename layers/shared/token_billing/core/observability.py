"""The one place the Powertools Logger and Metrics are created; everything imports these.

Service name and metric namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE, set per function in template.yaml. Tracer is not created here
(Lambda's active tracing records each invocation instead): it loads the AWS X-Ray SDK, in
maintenance mode since 2026-02-25, whose import costs about 0.6x of the cold-start floor
(`make bench`, reference `stack_tracer`), four times the debit function's whole budget.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit

logger = Logger()
metrics = Metrics()
# Lambda runs one invocation per process at a time; the dev server and the concurrency tests
# run several in threads over this one Metrics, so its check-then-flush must not interleave.
_flush_lock = threading.Lock()


def count(name: str, value: int) -> None:
    """Add a Count metric only when something happened: an all-zero EMF line says nothing
    and costs a CloudWatch metric write."""
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def publish_metrics(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Like `metrics.log_metrics`, but an invocation that recorded nothing prints nothing
    (no empty EMF line, no "No application metrics to publish" warning)."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        finally:
            with _flush_lock:
                # The provider's set (the same dict in AWS): the dev server gives each
                # invocation a provider of its own, under its function's service.
                if metrics.provider.metric_set:
                    metrics.flush_metrics()
                else:
                    metrics.clear_metrics()

    return wrapper


__all__ = ["MetricUnit", "count", "logger", "metrics", "publish_metrics"]
