"""webhook: Stripe events, verified by signature before anything else is read."""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.errors import BillingError, InvalidRequest
from token_billing.core.observability import MetricUnit, logger, metrics, publish_metrics
from token_billing.domain.stripe_events import EventStores, apply_stripe_event
from token_billing.edge.responses import error_response_dict, json_response_dict
from token_billing.integrations.stripe_gateway import verify_webhook
from token_billing.runtime import default_ledger, default_order_store, default_top_up_store

MAX_BODY_BYTES = 256 * 1024  # Stripe events are a few KB; refuse anything absurd unread

# Create the DynamoDB client during init, where Lambda runs at full CPU, not on the first
# event (stripe itself loads with token_billing.integrations.stripe_gateway).
default_order_store()
default_ledger()


def raw_body(event: dict[str, Any]) -> bytes:
    """The body as Stripe sent it; InvalidRequest when API Gateway's base64 is broken."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(str(body), validate=True)
        except ValueError:
            raise InvalidRequest("the request body is not valid base64") from None
    return str(body).encode()


@publish_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    signature = headers.get("stripe-signature")
    try:
        payload = raw_body(event)
    except InvalidRequest as error:
        return error_response_dict(error)
    if not signature or len(payload) > MAX_BODY_BYTES:
        metrics.add_metric(name="WebhookSignatureFailures", unit=MetricUnit.Count, value=1)
        return error_response_dict(InvalidRequest("missing or oversized Stripe-Signature request"))
    try:
        stripe_event = verify_webhook(payload, signature)
    except ValueError as error:
        metrics.add_metric(name="WebhookSignatureFailures", unit=MetricUnit.Count, value=1)
        logger.warning("webhook refused", extra={"reason": str(error)})
        return error_response_dict(InvalidRequest(str(error)))
    logger.append_keys(
        stripe_event_id=stripe_event.get("id"), stripe_event_type=stripe_event.get("type")
    )
    stores = EventStores(
        orders=default_order_store(), ledger=default_ledger(), top_ups=default_top_up_store()
    )
    try:
        outcome = apply_stripe_event(stripe_event, stores)
    except BillingError as error:
        # Retryable errors answer 503: Stripe redelivers with backoff for days.
        logger.warning("webhook not applied", extra={"code": error.code})
        return error_response_dict(error)
    logger.info("webhook applied", extra={"action": outcome.action, "order_id": outcome.order_id})
    return json_response_dict(
        200,
        {
            "received": True,
            "action": outcome.action,
            "order_id": outcome.order_id,
            "detail": outcome.detail,
        },
    )
