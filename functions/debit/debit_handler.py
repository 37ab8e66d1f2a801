"""debit: usage debits invoked directly by VM agents (IAM `lambda:InvokeFunction`).

Payload: {customer_id, idempotency_key, usage: [{action, quantity, vm_id?}], occurred_at?,
return_balance?}. Reply: {ok: true, debited, debited_mt, transaction_id, replayed} or
{ok: false, error: {code, message, retryable, ...}}. Imports neither pydantic nor stripe.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.debits import DebitResult, debit_usage, parse_debit_request
from token_billing.errors import BillingError, InsufficientTokens
from token_billing.observability import MetricUnit, logger, metrics
from token_billing.runtime import default_ledger
from token_billing.units import format_tokens

default_ledger()  # create the DynamoDB client during init, not on the first debit


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = parse_debit_request(event)
        result = debit_usage(default_ledger(), request)
    except BillingError as error:
        if isinstance(error, InsufficientTokens):
            metrics.add_metric(name="DebitRefusals", unit=MetricUnit.Count, value=1)
        logger.info("debit refused", extra={"code": error.code, "reason": error.message})
        return {"ok": False, **error.to_body()}
    if not result.replayed:
        metrics.add_metric(name="TokensDebitedMt", unit=MetricUnit.Count, value=result.debited_mt)
    return debit_reply(result)


def debit_reply(result: DebitResult) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "ok": True,
        "transaction_id": result.transaction_id,
        "debited": format_tokens(result.debited_mt),
        "debited_mt": result.debited_mt,
        "replayed": result.replayed,
    }
    if result.balance_mt is not None and result.available_mt is not None:
        reply["balance"] = format_tokens(result.balance_mt)
        reply["balance_mt"] = result.balance_mt
        reply["available"] = format_tokens(result.available_mt)
        reply["available_mt"] = result.available_mt
    return reply
