"""debit: usage debits and VM holds, invoked directly by VM agents (IAM
`lambda:InvokeFunction`). Ops: debit (default), hold, settle, renew, release; see
docs/debit-invoke-api.md. Replies {ok: true, ...} or {ok: false, error: {code, message,
retryable, ...}}. Imports neither pydantic nor stripe."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.errors import BillingError, InsufficientTokens, InvalidRequest
from token_billing.core.observability import MetricUnit, logger, metrics, publish_metrics
from token_billing.core.units import format_tokens
from token_billing.domain import holds
from token_billing.domain.debits import DebitResult, debit_usage, parse_debit_request
from token_billing.runtime import default_ledger
from token_billing.store.records import Hold

OPS = ("debit", "hold", "settle", "renew", "release")

default_ledger()  # create the DynamoDB client during init, not on the first debit


def tokens(name: str, amount_mt: int) -> dict[str, Any]:
    return {name: format_tokens(amount_mt), f"{name}_mt": amount_mt}


@publish_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    op = event.get("op", "debit") if isinstance(event, dict) else None
    try:
        if op not in OPS:
            raise InvalidRequest(f"op must be one of: {', '.join(OPS)}")
        reply = run(str(op), event)
    except BillingError as error:
        if isinstance(error, InsufficientTokens):
            metrics.add_metric(name="DebitRefusals", unit=MetricUnit.Count, value=1)
        logger.info("refused", extra={"op": op, "code": error.code, "reason": error.message})
        return {"ok": False, **error.to_body()}
    debited = reply.get("debited_mt", 0)
    if debited and not reply.get("replayed"):
        metrics.add_metric(name="TokensDebitedMt", unit=MetricUnit.Count, value=debited)
    return {"ok": True, **reply}


def run(op: str, event: dict[str, Any]) -> dict[str, Any]:
    ledger = default_ledger()
    if op == "debit":
        return debit_reply(debit_usage(ledger, parse_debit_request(event)))
    if op == "hold":
        placed = holds.place_hold(ledger, event)
        return {**hold_reply(placed.hold), "replayed": placed.replayed}
    if op == "settle":
        return settle_reply(holds.settle(ledger, event))
    if op == "renew":
        renewed = holds.renew(ledger, event)
        reply = settle_reply(renewed.settle) | {
            "renewed": renewed.renewed,
            "next_hold_id": event.get("next_hold_id"),
        }
        if renewed.renewed:
            return reply | {"expires_at": renewed.next_expires_at}
        return reply | {"grace_until": renewed.grace_until}
    hold, released_mt, replayed = holds.release(ledger, event)
    return {"hold_id": hold.hold_id, **tokens("released", released_mt), "replayed": replayed}


def hold_reply(hold: Hold) -> dict[str, Any]:
    return {
        "hold_id": hold.hold_id,
        **tokens("held", hold.original_mt),
        "expires_at": hold.expires_at,
        "status": hold.status,
    }


def settle_reply(result: holds.SettleResult) -> dict[str, Any]:
    return {
        "transaction_id": result.entry.txn_id,
        **tokens("debited", -result.entry.amount_mt),
        **tokens("released", result.released_mt),
        "late": result.late,
        "replayed": result.entry.replayed,
    }


def debit_reply(result: DebitResult) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "transaction_id": result.transaction_id,
        **tokens("debited", result.debited_mt),
        "replayed": result.replayed,
    }
    if result.balance_mt is not None and result.available_mt is not None:
        reply |= tokens("balance", result.balance_mt) | tokens("available", result.available_mt)
    return reply
