"""Usage debits from VM agents: a priced batch (checked by `edge.agent_requests`) posted
as one ledger entry, under the daily limit of the VM it bills when there is one (the
rules: `domain.vm_limits`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from token_billing.core.errors import InvalidRequest
from token_billing.store.ledger import Ledger
from token_billing.store.records import PostedEntry, VmDayLimit

if TYPE_CHECKING:
    # The types only: a debit is priced before it gets here (edge.agent_requests), and the
    # customer's limits come from the debit function's copy (store.vm_limits).
    from token_billing.domain.usage import PricedUsage
    from token_billing.store.vm_limits import VmLimitSettings


class MultipleLimitedVms(InvalidRequest):
    """A batch bills several VMs that are under a limit: each VM's spending is checked in
    the write by its own counter, and a write carries one."""


class DebitRequest(NamedTuple):
    customer_id: str
    idempotency_key: str
    usage: PricedUsage  # its cause records `occurred_at` when the agent sent one
    occurred_at: str | None
    return_balance: bool
    credential_vm_id: str | None = None  # the VM the caller's credential names, when required

    @property
    def amount_mt(self) -> int:
        return self.usage.amount_mt


class DebitResult(NamedTuple):
    transaction_id: str
    debited_mt: int
    replayed: bool
    balance_mt: int | None = None
    available_mt: int | None = None


def debit_usage(
    ledger: Ledger, request: DebitRequest, limits: VmLimitSettings | None = None
) -> DebitResult:
    """Post the batch as one atomic debit, under the daily limit of the VM it bills (from
    `limits`, the customer's); a repeated key returns the first result."""
    canonical = json.dumps(
        {"usage": request.usage.records, "occurred_at": request.occurred_at},
        separators=(",", ":"),
    )
    refusal = vm_limit = None
    try:
        vm_limit = _limit_of(request, limits)
    except MultipleLimitedVms as error:
        refusal = error
    posted = (
        ledger.debit(
            customer_id=request.customer_id,
            idempotency_key=request.idempotency_key,
            amount_mt=request.amount_mt,
            canonical_request=canonical,
            usage=request.usage.cause,
            vm_limit=vm_limit,
        )
        if refusal is None
        else _first_result_or(refusal, ledger, request, canonical)
    )
    result = DebitResult(posted.txn_id, -posted.amount_mt, posted.replayed)
    if request.return_balance:
        # TransactWriteItems returns no item values: the balance after costs one more read.
        account = ledger.get_account(request.customer_id)
        assert account is not None, "a debit only succeeds on an existing account"
        return DebitResult(
            result.transaction_id,
            result.debited_mt,
            result.replayed,
            account.balance_mt,
            account.available_mt,
        )
    return result


def _limit_of(request: DebitRequest, limits: VmLimitSettings | None) -> VmDayLimit | None:
    if limits is None:
        return None
    lines = ((line.vm_id, line.cost_mt) for line in request.usage.lines)
    return usage_limit(limits, spend_by_vm(lines, request.credential_vm_id))


def spend_by_vm(
    lines: Iterable[tuple[str | None, int]], credential_vm_id: str | None
) -> dict[str | None, int]:
    """Milli-tokens per VM of (vm_id, cost_mt) lines: the credential's VM takes every line
    when there is one (a line cannot name another VM then), each line's own otherwise."""
    totals: dict[str | None, int] = {}
    for vm_id, cost_mt in lines:
        owner = credential_vm_id or vm_id
        totals[owner] = totals.get(owner, 0) + cost_mt
    return totals


def usage_limit(settings: VmLimitSettings, spend: Mapping[str | None, int]) -> VmDayLimit | None:
    """The limit a debit answers to: that of the one limited VM it bills, with what it adds
    to that VM's day; None when it bills no limited VM; MultipleLimitedVms for several."""
    limited = [
        VmDayLimit(vm_id, limit_mt, spend_mt=spend_mt)
        for vm_id, spend_mt in spend.items()
        if vm_id is not None and (limit_mt := settings.limit_for(vm_id)) is not None
    ]
    if len(limited) > 1:
        names = ", ".join(sorted(limit.vm_id for limit in limited)[:5])
        raise MultipleLimitedVms(
            f"this batch bills several VMs under a daily limit ({names}); send one batch per "
            "VM: each VM's limit is checked in its own write"
        )
    return limited[0] if limited else None


def _first_result_or(
    refusal: MultipleLimitedVms, ledger: Ledger, request: DebitRequest, canonical: str
) -> PostedEntry:
    """A batch refused before any write still answers its first result when it is a replay
    (it was billed before the limits were set): the refusal stands only for a new key."""
    first = ledger.first_result(
        customer_id=request.customer_id,
        scope="usage",
        idempotency_key=request.idempotency_key,
        canonical_request=canonical,
    )
    if first is None:
        raise refusal
    return first
