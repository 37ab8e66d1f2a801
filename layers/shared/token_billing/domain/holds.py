"""Running VMs: hold tokens before they run, settle what they used, renew, release.

Two-phase transfers as a ledger built for money does them: a pending amount (the hold),
then post (settle) or void (release), with a timeout (the holds-sweeper). Decisions:
- A settle that finds its hold already released or expired bills the usage as an ordinary
  debit against available tokens (it may be refused). It is keyed by the hold id like a
  normal settle, so it can never capture twice.
- A refused renew still captures the usage and KEEPS the old hold, shrunk by what was
  captured, until its own expiry: that is the VM's grace to stop (`grace_until`). The
  agent's final settle of the old hold bills the grace minutes; if it never comes, the
  sweeper releases the rest. A renew is refused so when available tokens do not cover the
  next hold, or when it does not fit in what the VM may still spend today (`reason`).
- Under a VM's daily limit (`domain.vm_limits`), a hold must fit in what the VM may still
  spend today, and what a settle or renew captures (all of it, past the hold too) counts
  as the VM's spending of the day of the capture: one that would pass the limit is
  refused whole (`vm_limit_reached`), and the hold stays until it expires.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import NamedTuple

from token_billing.core.clock import iso_utc
from token_billing.core.errors import (
    InsufficientTokens,
    NotFound,
    ServiceUnavailable,
    VmLimitReached,
)
from token_billing.domain.agent_credentials import check_hold_vm
from token_billing.domain.usage import PricedUsage
from token_billing.store.holds import HoldChanged, HoldLedger
from token_billing.store.records import Hold, NewHold, PostedEntry, UsageCause, VmDayLimit
from token_billing.store.vm_limits import VmLimitSettings

# A hold read and then changed by a racing settle, release or sweep is read again.
HOLD_RACE_ATTEMPTS = 3


class HoldNotFound(NotFound):
    code = "hold_not_found"


# ---- requests (checked by the debit function's edge) ------------------------------------


class HoldSpec(NamedTuple):
    """A hold to place: its id, amount, absolute expiry and VM."""

    hold_id: str
    amount_mt: int
    expires_at: str
    vm_id: str | None

    def new_hold(self) -> NewHold:
        # The expiry moves with the clock: a retry is the same hold if amount and VM agree.
        canonical = _canonical(op="hold", amount_mt=self.amount_mt, vm_id=self.vm_id)
        return NewHold(self.hold_id, self.amount_mt, self.expires_at, self.vm_id, canonical)


class HoldRequest(NamedTuple):
    customer_id: str
    hold: HoldSpec


class SettleRequest(NamedTuple):
    customer_id: str
    hold_id: str
    usage: PricedUsage
    credential_vm_id: str | None  # the VM the caller's credential names, when required


class RenewRequest(NamedTuple):
    settle: SettleRequest
    next_hold: HoldSpec


class ReleaseRequest(NamedTuple):
    customer_id: str
    hold_id: str
    credential_vm_id: str | None


# ---- results ---------------------------------------------------------------------------


class HoldResult(NamedTuple):
    hold: Hold
    replayed: bool


class SettleResult(NamedTuple):
    entry: PostedEntry
    released_mt: int
    late: bool


class RenewResult(NamedTuple):
    settle: SettleResult
    renewed: bool
    next_expires_at: str | None  # when renewed
    grace_until: str | None  # when not: the old hold's expiry, if it is still held
    reason: str | None = None  # when not: insufficient_tokens or vm_limit_reached


class ReleaseResult(NamedTuple):
    hold: Hold
    released_mt: int
    replayed: bool


class _Capture(NamedTuple):
    """One settle or renew's capture: what it bills, under which key, and how it answers."""

    request: SettleRequest
    scope: str
    canonical: str
    keep_remaining: bool = False
    next_hold: NewHold | None = None
    limits: VmLimitSettings | None = None  # the customer's VM limits, if any
    not_renewed: str | None = None  # with keep_remaining: why the renew placed no hold

    @property
    def cost_mt(self) -> int:
        return self.request.usage.amount_mt

    @property
    def cause(self) -> UsageCause:
        return self.request.usage.cause


def hold_limit(
    settings: VmLimitSettings | None, vm_id: str | None, amount_mt: int
) -> VmDayLimit | None:
    """A hold of `amount_mt` for `vm_id` must fit in what the VM may still spend today."""
    limit_mt = settings.limit_for(vm_id) if settings is not None and vm_id else None
    return (
        None
        if limit_mt is None or vm_id is None
        else VmDayLimit(vm_id, limit_mt, reserve_mt=amount_mt)
    )


def capture_limit(
    settings: VmLimitSettings | None, hold_vm_id: str | None, cost_mt: int, next_hold_mt: int = 0
) -> VmDayLimit | None:
    """What a settle or renew of a VM's hold adds to the VM's day: its whole cost (usage
    past the hold included); a renew's next hold must fit after it. A hold placed for no VM
    answers to no limit."""
    limit_mt = settings.limit_for(hold_vm_id) if settings is not None and hold_vm_id else None
    if limit_mt is None or hold_vm_id is None:
        return None
    return VmDayLimit(hold_vm_id, limit_mt, spend_mt=cost_mt, reserve_mt=next_hold_mt)


def _canonical(**parts: object) -> str:
    return json.dumps(parts, sort_keys=True, separators=(",", ":"))


def _reply_json(**reply: object) -> str:
    """What this call answers, kept in its entry so that a replay answers the same."""
    return json.dumps(reply, sort_keys=True, separators=(",", ":"))


def _text(reply: dict[str, object], name: str) -> str | None:
    value = reply.get(name)
    return None if value is None else str(value)


def _first_reply(entry: PostedEntry) -> dict[str, object] | None:
    """What the first call of a replayed settle or renew answered, if it was recorded."""
    if not entry.replayed or not entry.reply:
        return None
    reply: dict[str, object] = json.loads(entry.reply)
    return reply


# ---- the ops ---------------------------------------------------------------------------


def place_hold(
    ledger: HoldLedger, request: HoldRequest, limits: VmLimitSettings | None = None
) -> HoldResult:
    """`hold`: reserve tokens for a VM; refused whole when available tokens fall short or
    the VM may not spend that much more today."""
    spec = request.hold
    hold, replayed = ledger.place_hold(
        customer_id=request.customer_id,
        hold=spec.new_hold(),
        vm_limit=hold_limit(limits, spec.vm_id, spec.amount_mt),
    )
    return HoldResult(hold, replayed)


def _existing_hold(ledger: HoldLedger, customer_id: str, hold_id: str) -> Hold:
    hold = ledger.get_hold(customer_id, hold_id)
    if hold is None:
        raise HoldNotFound(f"no hold {hold_id!r} for this customer")
    return hold


def _bill_closed_hold(ledger: HoldLedger, capture: _Capture, hold: Hold) -> SettleResult:
    """A settle that finds its hold released or expired bills the usage as a plain debit
    under the hold's key; a replay answers what the first call did."""
    settled_here = hold.status == "settled"
    released = hold.released_mt if settled_here else 0
    entry = ledger.debit(
        customer_id=hold.customer_id,
        idempotency_key=hold.hold_id,
        amount_mt=capture.cost_mt,
        canonical_request=capture.canonical,
        usage=capture.cause._replace(
            hold_id=hold.hold_id,
            reply=_reply_json(released_mt=released, late=not settled_here),
        ),
        scope=capture.scope,
        vm_limit=capture_limit(capture.limits, hold.vm_id, capture.cost_mt),
    )
    first = _first_reply(entry)
    if first is not None:
        return SettleResult(entry, int(str(first["released_mt"])), bool(first["late"]))
    return SettleResult(entry, released, late=not settled_here)


def _capture_reply(capture: _Capture, hold: Hold) -> tuple[int, str]:
    """What a capture from this active hold releases, and the reply it records: the reply
    is known before the write, so a replay answers exactly what the first call did."""
    if capture.keep_remaining:
        return 0, _reply_json(
            released_mt=0,
            late=False,
            renewed=False,
            grace_until=hold.expires_at,
            reason=capture.not_renewed,
        )
    released = hold.amount_mt - min(capture.cost_mt, hold.amount_mt)
    if capture.next_hold is not None:
        expires_at = capture.next_hold.expires_at
        return released, _reply_json(
            released_mt=released, late=False, renewed=True, expires_at=expires_at
        )
    return released, _reply_json(released_mt=released, late=False)


def _capture_or_debit(ledger: HoldLedger, capture: _Capture) -> tuple[SettleResult, Hold]:
    """Capture usage from the hold if it is still active; otherwise bill it as a plain
    debit under the same key (a replay returns the first capture)."""
    request = capture.request
    for _ in range(HOLD_RACE_ATTEMPTS):
        hold = _existing_hold(ledger, request.customer_id, request.hold_id)
        check_hold_vm(request.credential_vm_id, hold.vm_id)
        if not hold.active:
            return _bill_closed_hold(ledger, capture, hold), hold
        _, reply = _capture_reply(capture, hold)
        next_mt = capture.next_hold.amount_mt if capture.next_hold else 0
        try:
            captured = ledger.capture_hold(
                hold=hold,
                cost_mt=capture.cost_mt,
                scope=capture.scope,
                canonical_request=capture.canonical,
                usage=capture.cause._replace(reply=reply),
                keep_remaining=capture.keep_remaining,
                next_hold=capture.next_hold,
                vm_limit=capture_limit(capture.limits, hold.vm_id, capture.cost_mt, next_mt),
            )
        except HoldChanged:
            continue
        first = _first_reply(captured.entry)
        if first is not None:
            return SettleResult(captured.entry, int(str(first["released_mt"])), False), hold
        return SettleResult(captured.entry, captured.released_mt, late=False), hold
    raise ServiceUnavailable("the hold kept changing; retry with the same ids")


def settle(
    ledger: HoldLedger, request: SettleRequest, limits: VmLimitSettings | None = None
) -> SettleResult:
    """`settle`: capture the usage, release the rest of the hold, one ledger entry."""
    canonical = _canonical(op="settle", usage=request.usage.records)
    capture = _Capture(request, "settle", canonical, limits=limits)
    result, _ = _capture_or_debit(ledger, capture)
    return result


def renew(
    ledger: HoldLedger, request: RenewRequest, limits: VmLimitSettings | None = None
) -> RenewResult:
    """`renew`: settle and place the next hold in one transaction. When the next hold
    cannot be covered (by available tokens, or by what the VM may still spend today), the
    usage is still captured and the old hold kept until expiry."""
    settling, next_hold = request.settle, request.next_hold.new_hold()
    canonical = _canonical(
        op="renew",
        usage=settling.usage.records,
        next_hold_id=next_hold.hold_id,
        amount_mt=next_hold.amount_mt,
    )
    capture = _Capture(settling, "renew", canonical, limits=limits)
    try:
        result, _ = _capture_or_debit(ledger, capture._replace(next_hold=next_hold))
    except (InsufficientTokens, VmLimitReached) as refusal:
        keep = capture._replace(keep_remaining=True, not_renewed=refusal.code)
        result, old = _capture_or_debit(ledger, keep)
        first = _first_reply(result.entry)  # a replay answers what the first call did
        reason = refusal.code if first is None else _text(first, "reason")
        return RenewResult(result, False, None, old.expires_at, reason)
    if not result.entry.replayed and not result.late:
        return RenewResult(result, True, next_hold.expires_at, None)  # the common case
    return _renew_after_replay(ledger, settling, next_hold, result, limits)


def _renew_after_replay(
    ledger: HoldLedger,
    settling: SettleRequest,
    next_hold: NewHold,
    result: SettleResult,
    limits: VmLimitSettings | None,
) -> RenewResult:
    """A replay, or a late renew whose old hold was already gone: the usage is billed once;
    the next hold is what the first call answered, what it left, or placed now."""
    first = _first_reply(result.entry)
    if first is not None and "renewed" in first:
        return RenewResult(
            result,
            bool(first["renewed"]),
            _text(first, "expires_at"),
            _text(first, "grace_until"),
            _text(first, "reason"),
        )
    placed = ledger.get_hold(settling.customer_id, next_hold.hold_id)
    if placed is not None:
        return RenewResult(result, True, placed.expires_at, None)
    old = _existing_hold(ledger, settling.customer_id, settling.hold_id)
    if old.active:  # the replay of a refused renew: the old hold is still the grace
        return RenewResult(result, False, None, old.expires_at)
    try:
        placed, _ = ledger.place_hold(
            customer_id=settling.customer_id,
            hold=next_hold,
            vm_limit=hold_limit(limits, next_hold.vm_id, next_hold.amount_mt),
        )
    except (InsufficientTokens, VmLimitReached) as refusal:
        return RenewResult(result, False, None, None, refusal.code)
    return RenewResult(result, True, placed.expires_at, None)


def release(ledger: HoldLedger, request: ReleaseRequest) -> ReleaseResult:
    """`release`: free the hold, capture nothing."""
    for _ in range(HOLD_RACE_ATTEMPTS):
        hold = _existing_hold(ledger, request.customer_id, request.hold_id)
        check_hold_vm(request.credential_vm_id, hold.vm_id)
        if not hold.active:
            # A repeated release answers what the first one released.
            return ReleaseResult(hold, hold.released_mt if hold.status == "released" else 0, True)
        if ledger.release_hold(hold):
            return ReleaseResult(hold, hold.amount_mt, False)
    raise ServiceUnavailable("the hold kept changing; retry with the same id")


def sweep_expired(ledger: HoldLedger, now: datetime, *, limit: int = 500) -> int:
    """Release every active hold past its expiry (status `expired`); returns how many."""
    now_iso = iso_utc(now)
    released = 0
    for customer_id, hold_id in ledger.expired_holds(now_iso, limit=limit):
        hold = ledger.get_hold(customer_id, hold_id)
        if hold is not None and hold.active and hold.expires_at <= now_iso:
            released += ledger.release_hold(hold, status="expired")
    return released
