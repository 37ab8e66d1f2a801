"""realtime-authorizer: the WebSocket API's Lambda REQUEST authorizer on `$connect`.

Verifies the same JWT as the HTTP API and answers before the connection is accepted:
no or an invalid token raises "Unauthorized" (API Gateway answers 401), a valid token that
may not watch the customer it names gets a Deny policy (403), anything else an Allow with
the watched customer in the context. No boto3, no pydantic: it runs on every connect.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.observability import MetricUnit, logger, metrics, publish_metrics
from token_billing.edge.socket_auth import ConnectRefused, authorize_connect, default_verifier


@publish_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        answer = authorize_connect(event, default_verifier())
    except ConnectRefused as refused:
        logger.info("socket refused: no valid token", extra={"reason": repr(refused.__cause__)})
        metrics.add_metric(name="SocketConnectsRefused", unit=MetricUnit.Count, value=1)
        raise
    effect = answer["policyDocument"]["Statement"][0]["Effect"]
    if effect != "Allow":
        logger.info("socket denied", extra={"subject": answer["principalId"]})
        metrics.add_metric(name="SocketConnectsRefused", unit=MetricUnit.Count, value=1)
    return answer
