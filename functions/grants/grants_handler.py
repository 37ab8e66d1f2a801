"""grants: admin grants of promotional or support tokens, in a function of their own so
that only this function's role may write a grant: a bug in a customer-facing read route
(balances) cannot move tokens."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.errors import InvalidRequest
from token_billing.core.observability import MetricUnit, logger, metrics, publish_metrics
from token_billing.core.units import QuantityError, format_tokens, tokens_to_mt
from token_billing.edge.access import require_admin
from token_billing.edge.identity import current_caller
from token_billing.edge.models.balances import GrantIn, GrantOut
from token_billing.edge.models.customer_path import CustomerId
from token_billing.edge.models.idempotency import IDEMPOTENCY_KEY_DESCRIPTION, IdempotencyKeyHeader
from token_billing.edge.resolver import create_resolver
from token_billing.runtime import default_ledger

app = create_resolver()
default_ledger()  # create the DynamoDB client during init


@app.post(
    "/api/v1/customers/<customer_id>/tokens/grants",
    tags=["admin"],
    summary="Grant promotional or support tokens (admin scope)",
)
def grant_tokens(
    customer_id: CustomerId,
    body: GrantIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response[GrantOut]:
    caller = current_caller(app)
    require_admin(caller)
    key = idempotency_key or body.idempotency_key
    if key is None:
        raise InvalidRequest(f"Idempotency-Key is required: {IDEMPOTENCY_KEY_DESCRIPTION}")
    try:
        amount_mt = tokens_to_mt(body.amount)
    except QuantityError as error:
        raise InvalidRequest(f"amount: {error}") from None
    if amount_mt <= 0:
        raise InvalidRequest("amount must be greater than zero")
    posted = default_ledger().grant(
        customer_id=customer_id,
        idempotency_key=key,
        amount_mt=amount_mt,
        reason=body.reason,
        granted_by=caller.subject,
    )
    if not posted.replayed:
        metrics.add_metric(name="TokensGrantedMt", unit=MetricUnit.Count, value=amount_mt)
        logger.info("tokens granted", extra={"customer_id": customer_id, "amount_mt": amount_mt})
    grant = GrantOut(
        transaction_id=posted.txn_id,
        customer_id=customer_id,
        amount=format_tokens(posted.amount_mt),
        amount_mt=posted.amount_mt,
        reason=body.reason,
        replayed=posted.replayed,
    )
    return Response(
        status_code=200 if posted.replayed else 201,
        content_type=content_types.APPLICATION_JSON,
        body=grant,
    )


@publish_metrics
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
