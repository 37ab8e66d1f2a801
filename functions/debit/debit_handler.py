"""debit: usage debits and VM holds, invoked directly by VM agents (IAM
`lambda:InvokeFunction`). Ops: debit (default), hold, settle, renew, release; see
docs/debit-invoke-api.md. Every op carries the VM's agent credential, verified without a
DynamoDB request (RequireAgentCredentials). Replies {ok: true, ...} or {ok: false, error:
{code, message, retryable, ...}}. Imports neither pydantic nor stripe."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.errors import BillingError, InsufficientTokens, InvalidRequest
from token_billing.core.observability import MetricUnit, logger, metrics, publish_metrics
from token_billing.core.units import format_tokens
from token_billing.domain import holds
from token_billing.domain.agent_credentials import (
    CredentialKeys,
    bind_to_credential,
    verify_credential,
)
from token_billing.domain.debits import DebitResult, debit_usage, parse_debit_request
from token_billing.integrations.agent_credential_keys import (
    credential_keys_document,
    credentials_required,
)
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


def authorized_payload(event: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The op's payload without its credential, and the VM the credential is for. Checked
    before any DynamoDB request: a refused op has sent nothing (RequireAgentCredentials)."""
    payload = {name: value for name, value in event.items() if name != "credential"}
    if not credentials_required():
        return payload, None
    keys = CredentialKeys.from_json(credential_keys_document())
    credential = verify_credential(event.get("credential"), keys, now_s=int(time.time()))
    return bind_to_credential(credential, payload), credential.vm_id


def run(op: str, event: dict[str, Any]) -> dict[str, Any]:
    ledger = default_ledger()
    event, vm_id = authorized_payload(event)
    if op == "debit":
        return debit_reply(debit_usage(ledger, parse_debit_request(event)))
    if op == "hold":
        placed = holds.place_hold(ledger, event)
        return {**hold_reply(placed.hold), "replayed": placed.replayed}
    if op == "settle":
        return settle_reply(holds.settle(ledger, event, credential_vm_id=vm_id))
    if op == "renew":
        renewed = holds.renew(ledger, event, credential_vm_id=vm_id)
        reply = settle_reply(renewed.settle) | {
            "renewed": renewed.renewed,
            "next_hold_id": event.get("next_hold_id"),
        }
        if renewed.renewed:
            return reply | {"expires_at": renewed.next_expires_at}
        return reply | {"grace_until": renewed.grace_until}
    hold, released_mt, replayed = holds.release(ledger, event, credential_vm_id=vm_id)
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
