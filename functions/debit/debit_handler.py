"""debit: usage debits and VM holds, invoked directly by VM agents (IAM
`lambda:InvokeFunction`). Ops: debit (default), hold, settle, renew, release; see
docs/debit-invoke-api.md. Every op carries the VM's agent credential, verified without a
DynamoDB request (RequireAgentCredentials). Replies {ok: true, ...} or {ok: false, error:
{code, message, retryable, ...}}. Imports neither pydantic nor stripe.

Each op is one small entry below, found by name in `OPS`: parse the payload into the
domain's request (`edge.agent_requests`), run it (`domain.debits`, `domain.holds`) under
the customer's VM limits (this container's copy, `store.vm_limits`), shape the reply."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.clock import utc_now_iso
from token_billing.core.errors import BillingError, InsufficientTokens, VmLimitReached
from token_billing.core.observability import MetricUnit, logger, metrics, publish_metrics
from token_billing.core.units import format_tokens
from token_billing.domain import holds
from token_billing.domain.debits import DebitResult, debit_usage
from token_billing.edge import agent_requests as requests
from token_billing.runtime import default_ledger, default_vm_limit_store, default_vm_limits
from token_billing.store.holds import HoldLedger
from token_billing.store.records import Hold
from token_billing.store.vm_limits import VmLimitSettings

Reply = dict[str, Any]

default_ledger()  # create the DynamoDB client during init, not on the first debit
default_vm_limits()


def limits_of(customer_id: str) -> VmLimitSettings | None:
    """The customer's VM limits from this container's copy (one read per refresh period)."""
    return default_vm_limits().get(customer_id)


def tokens(name: str, amount_mt: int) -> dict[str, Any]:
    return {name: format_tokens(amount_mt), f"{name}_mt": amount_mt}


def debit(ledger: HoldLedger, payload: Mapping[str, object], vm_id: str | None) -> Reply:
    request = requests.parse_debit_request(payload, vm_id)
    result = debit_usage(ledger, request, limits_of(request.customer_id))
    return debit_reply(result)


def hold(ledger: HoldLedger, payload: Mapping[str, object], vm_id: str | None) -> Reply:
    request = requests.parse_hold_request(payload, datetime.now(UTC))
    placed = holds.place_hold(ledger, request, limits_of(request.customer_id))
    return {**hold_reply(placed.hold), "replayed": placed.replayed}


def settle(ledger: HoldLedger, payload: Mapping[str, object], vm_id: str | None) -> Reply:
    request = requests.parse_settle_request(payload, vm_id)
    result = holds.settle(ledger, request, limits_of(request.customer_id))
    return settle_reply(result)


def renew(ledger: HoldLedger, payload: Mapping[str, object], vm_id: str | None) -> Reply:
    request = requests.parse_renew_request(payload, vm_id, datetime.now(UTC))
    renewed = holds.renew(ledger, request, limits_of(request.settle.customer_id))
    reply = settle_reply(renewed.settle) | {
        "renewed": renewed.renewed,
        "next_hold_id": request.next_hold.hold_id,
    }
    if renewed.renewed:
        return reply | {"expires_at": renewed.next_expires_at}
    reason = {"reason": renewed.reason} if renewed.reason else {}
    return reply | {"grace_until": renewed.grace_until} | reason


def release(ledger: HoldLedger, payload: Mapping[str, object], vm_id: str | None) -> Reply:
    request = requests.parse_release_request(payload, vm_id)
    released = holds.release(ledger, request)
    return {
        "hold_id": released.hold.hold_id,
        **tokens("released", released.released_mt),
        "replayed": released.replayed,
    }


Op = Callable[[HoldLedger, Mapping[str, object], "str | None"], Reply]
OPS: Mapping[str, Op] = {
    "debit": debit,
    "hold": hold,
    "settle": settle,
    "renew": renew,
    "release": release,
}
assert tuple(OPS) == requests.OPS


@publish_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    op = None
    try:
        op = requests.op_name(event)
        payload, vm_id = requests.authorized_payload(event)
        reply = OPS[op](default_ledger(), payload, vm_id)
    except BillingError as error:
        if isinstance(error, InsufficientTokens):
            metrics.add_metric(name="DebitRefusals", unit=MetricUnit.Count, value=1)
        if isinstance(error, VmLimitReached):
            note_vm_limit_reached(event, error)
        logger.info("refused", extra={"op": op, "code": error.code, "reason": error.message})
        return {"ok": False, **error.to_body()}
    debited = reply.get("debited_mt", 0)
    if debited and not reply.get("replayed"):
        metrics.add_metric(name="TokensDebitedMt", unit=MetricUnit.Count, value=debited)
    return {"ok": True, **reply}


def note_vm_limit_reached(event: Mapping[str, object], refusal: VmLimitReached) -> None:
    """Loud, never in the way: the metric, and the VM's day marked refused once (the ledger
    stream turns the first mark into one `VmLimitReached` event). A failed mark is logged;
    the agent still gets its refusal."""
    metrics.add_metric(name="VmLimitRefusals", unit=MetricUnit.Count, value=1)
    try:
        default_vm_limits().note_reached(
            default_vm_limit_store(),
            customer_id=str(event.get("customer_id")),
            refusal=refusal.details,
            at=utc_now_iso(),
        )
    except Exception:  # the refusal is the answer; the mark is a side effect
        logger.exception("could not mark the VM limit reached")


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
