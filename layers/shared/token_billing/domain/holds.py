"""Running VMs: hold tokens before they run, settle what they used, renew, release.

Two-phase transfers as a ledger built for money does them: a pending amount (the hold),
then post (settle) or void (release), with a timeout (the holds-sweeper). Decisions:
- A settle that finds its hold already released or expired bills the usage as an ordinary
  debit against available tokens (it may be refused). It is keyed by the hold id like a
  normal settle, so it can never capture twice.
- A refused renew still captures the usage and KEEPS the old hold, shrunk by what was
  captured, until its own expiry: that is the VM's grace to stop (`grace_until`). The
  agent's final settle of the old hold bills the grace minutes; if it never comes, the
  sweeper releases the rest.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from token_billing.core.errors import (
    InsufficientTokens,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
)
from token_billing.core.units import MT_PER_TOKEN, QuantityError, tokens_to_mt
from token_billing.domain.agent_credentials import check_hold_vm
from token_billing.domain.debits import (
    parse_occurred_at,
    require_customer_id,
    require_idempotency_key,
    usage_cause,
)
from token_billing.domain.usage import UsageLine, price_usage
from token_billing.store.codecs import AttributeValue
from token_billing.store.holds import HoldChanged, HoldLedger
from token_billing.store.records import Hold, NewHold, PostedEntry

HOLD_EXPIRY_MIN_S = 60
HOLD_EXPIRY_MAX_S = 24 * 3600
HOLD_MAX_MT = 10**9 * MT_PER_TOKEN
# A hold read and then changed by a racing settle, release or sweep is read again.
HOLD_RACE_ATTEMPTS = 3


class HoldNotFound(NotFound):
    code = "hold_not_found"


@dataclass(frozen=True, slots=True)
class HoldResult:
    hold: Hold
    replayed: bool


@dataclass(frozen=True, slots=True)
class SettleResult:
    entry: PostedEntry
    released_mt: int
    late: bool


def _first_reply(entry: PostedEntry) -> dict[str, object] | None:
    """What the first call of a replayed settle or renew answered, if it was recorded."""
    if not entry.replayed or not entry.reply:
        return None
    reply: dict[str, object] = json.loads(entry.reply)
    return reply


def _reply_attr(**reply: object) -> dict[str, AttributeValue]:
    return {"reply": {"S": json.dumps(reply, sort_keys=True, separators=(",", ":"))}}


@dataclass(frozen=True, slots=True)
class RenewResult:
    settle: SettleResult
    renewed: bool
    next_expires_at: str | None  # when renewed
    grace_until: str | None  # when not: the old hold's expiry, if it is still held


def _fields(payload: Mapping[str, object], allowed: set[str]) -> None:
    unknown = set(payload) - allowed - {"op", "customer_id"}
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(sorted(map(str, unknown)))}")


def _amount_mt(value: object) -> int:
    try:
        amount_mt = tokens_to_mt(value)
    except QuantityError as error:
        raise InvalidRequest(f"amount: {error}") from None
    if not 0 < amount_mt <= HOLD_MAX_MT:
        raise InvalidRequest("amount must be greater than zero")
    return amount_mt


def _expires_at(value: object, now: datetime) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest("expires_in_s must be an integer number of seconds")
    if not HOLD_EXPIRY_MIN_S <= value <= HOLD_EXPIRY_MAX_S:
        raise InvalidRequest(
            f"expires_in_s must be between {HOLD_EXPIRY_MIN_S} and {HOLD_EXPIRY_MAX_S}"
        )
    moment = now + timedelta(seconds=value)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _canonical(**parts: object) -> str:
    return json.dumps(parts, sort_keys=True, separators=(",", ":"))


def _new_hold(payload: Mapping[str, object], id_field: str, now: datetime) -> NewHold:
    hold_id = require_idempotency_key(payload.get(id_field), id_field)
    amount_mt = _amount_mt(payload.get("amount"))
    expires_in_s = payload.get("expires_in_s")
    vm_id = payload.get("vm_id")
    if vm_id is not None and not isinstance(vm_id, str):
        raise InvalidRequest("vm_id must be a string")
    if isinstance(vm_id, str):
        require_idempotency_key(vm_id, "vm_id")
    return NewHold(
        hold_id=hold_id,
        amount_mt=amount_mt,
        expires_at=_expires_at(expires_in_s, now),
        vm_id=vm_id,
        # The expiry moves with the clock: a retry is the same hold if amount and VM agree.
        canonical_request=_canonical(op="hold", amount_mt=amount_mt, vm_id=vm_id),
    )


def place_hold(ledger: HoldLedger, payload: Mapping[str, object]) -> HoldResult:
    """`hold`: reserve tokens for a VM; refused whole when available tokens fall short."""
    _fields(payload, {"hold_id", "amount", "expires_in_s", "vm_id"})
    customer_id = require_customer_id(payload.get("customer_id"))
    hold, replayed = ledger.place_hold(
        customer_id=customer_id, hold=_new_hold(payload, "hold_id", datetime.now(UTC))
    )
    return HoldResult(hold, replayed)


def _existing_hold(ledger: HoldLedger, customer_id: str, hold_id: str) -> Hold:
    hold = ledger.get_hold(customer_id, hold_id)
    if hold is None:
        raise HoldNotFound(f"no hold {hold_id!r} for this customer")
    return hold


def _late_debit(
    ledger: HoldLedger,
    hold: Hold,
    lines: list[UsageLine],
    *,
    scope: str,
    canonical: str,
    next_hold: NewHold | None,
    renewing: bool,
) -> SettleResult:
    """The usage of a hold no longer active, billed as a plain debit under the hold's key;
    a renew's next hold is placed in the same transaction, so the entry records whether it
    was (a replay answers exactly what the first call did)."""
    cause, by_action = usage_cause(lines)
    cost_mt = sum(line.cost_mt for line in lines)
    settled_here = hold.status == "settled"
    released = hold.released_mt if settled_here else 0
    reply: dict[str, object] = {"released_mt": released, "late": not settled_here}
    if next_hold is not None:
        reply |= {"renewed": True, "expires_at": next_hold.expires_at}
    elif renewing:  # the next hold was not covered: the usage alone, and no grace left
        reply |= {"renewed": False, "grace_until": None}
    late_cause = {**cause, "hold_id": {"S": hold.hold_id}, **_reply_attr(**reply)}
    common: dict[str, Any] = {
        "customer_id": hold.customer_id,
        "idempotency_key": hold.hold_id,
        "amount_mt": cost_mt,
        "canonical_request": canonical,
        "cause": late_cause,
        "usage_mt_by_action": by_action,
        "scope": scope,
    }
    if next_hold is not None:
        entry = ledger.debit_and_place_hold(next_hold=next_hold, **common)
    else:
        entry = ledger.debit(**common)
    first = _first_reply(entry)
    if first is not None:
        return SettleResult(entry, int(str(first["released_mt"])), bool(first["late"]))
    return SettleResult(entry, released, late=not settled_here)


def _capture_or_debit(
    ledger: HoldLedger,
    *,
    customer_id: str,
    hold_id: str,
    lines: list[UsageLine],
    scope: str,
    canonical: str,
    keep_remaining: bool = False,
    next_hold: NewHold | None = None,
    credential_vm_id: str | None = None,
) -> tuple[SettleResult, Hold]:
    """Capture usage from the hold if it is still active; otherwise bill it as a plain
    debit under the same key (a replay returns the first capture)."""
    cause, by_action = usage_cause(lines)
    cost_mt = sum(line.cost_mt for line in lines)
    for _ in range(HOLD_RACE_ATTEMPTS):
        hold = _existing_hold(ledger, customer_id, hold_id)
        check_hold_vm(credential_vm_id, hold.vm_id)
        if not hold.active:
            return _late_debit(
                ledger,
                hold,
                lines,
                scope=scope,
                canonical=canonical,
                next_hold=next_hold,
                renewing=keep_remaining,
            ), hold
        # The reply is known before the write, so the entry records it: a replay answers
        # exactly what the first call did, not what the hold looks like now.
        released = 0 if keep_remaining else hold.amount_mt - min(cost_mt, hold.amount_mt)
        if next_hold is not None:
            reply = _reply_attr(
                released_mt=released, late=False, renewed=True, expires_at=next_hold.expires_at
            )
        elif keep_remaining:
            reply = _reply_attr(
                released_mt=released, late=False, renewed=False, grace_until=hold.expires_at
            )
        else:
            reply = _reply_attr(released_mt=released, late=False)
        try:
            capture = ledger.capture_hold(
                hold=hold,
                cost_mt=cost_mt,
                usage_mt_by_action=by_action,
                scope=scope,
                canonical_request=canonical,
                cause={**cause, **reply},
                keep_remaining=keep_remaining,
                next_hold=next_hold,
            )
        except HoldChanged:
            continue
        first = _first_reply(capture.entry)
        if first is not None:
            return SettleResult(capture.entry, int(str(first["released_mt"])), False), hold
        return SettleResult(capture.entry, capture.released_mt, late=False), hold
    raise ServiceUnavailable("the hold kept changing; retry with the same ids")


def settle(
    ledger: HoldLedger, payload: Mapping[str, object], *, credential_vm_id: str | None = None
) -> SettleResult:
    """`settle`: capture the usage, release the rest of the hold, one ledger entry."""
    _fields(payload, {"hold_id", "usage", "occurred_at"})
    customer_id = require_customer_id(payload.get("customer_id"))
    hold_id = require_idempotency_key(payload.get("hold_id"), "hold_id")
    lines = price_usage(payload.get("usage"))
    parse_occurred_at(payload.get("occurred_at"))
    canonical = _canonical(op="settle", usage=[line.to_record() for line in lines])
    result, _ = _capture_or_debit(
        ledger,
        customer_id=customer_id,
        hold_id=hold_id,
        lines=lines,
        scope="settle",
        canonical=canonical,
        credential_vm_id=credential_vm_id,
    )
    return result


def renew(
    ledger: HoldLedger, payload: Mapping[str, object], *, credential_vm_id: str | None = None
) -> RenewResult:
    """`renew`: settle and place the next hold in one transaction. When the next hold
    cannot be covered, the usage is still captured and the old hold kept until expiry."""
    _fields(
        payload,
        {"hold_id", "usage", "next_hold_id", "amount", "expires_in_s", "vm_id", "occurred_at"},
    )
    customer_id = require_customer_id(payload.get("customer_id"))
    hold_id = require_idempotency_key(payload.get("hold_id"), "hold_id")
    lines = price_usage(payload.get("usage"))
    parse_occurred_at(payload.get("occurred_at"))
    next_hold = _new_hold(payload, "next_hold_id", datetime.now(UTC))
    if next_hold.hold_id == hold_id:
        raise InvalidRequest("next_hold_id must differ from hold_id")
    canonical = _canonical(
        op="renew",
        usage=[line.to_record() for line in lines],
        next_hold_id=next_hold.hold_id,
        amount_mt=next_hold.amount_mt,
    )
    capture = functools.partial(
        _capture_or_debit,
        ledger,
        customer_id=customer_id,
        hold_id=hold_id,
        lines=lines,
        scope="renew",
        canonical=canonical,
        credential_vm_id=credential_vm_id,
    )
    try:
        result, _ = capture(next_hold=next_hold)
    except InsufficientTokens:
        result, old = capture(keep_remaining=True)
        first = _first_reply(result.entry)
        if first is None or "renewed" not in first:
            return RenewResult(result, False, None, old.expires_at if old.active else None)
    if not result.entry.replayed:
        # Captured or billed late, the next hold was placed in the same transaction.
        return RenewResult(result, True, next_hold.expires_at, None)
    first = _first_reply(result.entry)
    if first is not None and "renewed" in first:
        return RenewResult(
            result,
            bool(first["renewed"]),
            None if first.get("expires_at") is None else str(first["expires_at"]),
            None if first.get("grace_until") is None else str(first["grace_until"]),
        )
    # The replay of an entry written before late renews recorded their outcome: the usage
    # is billed once; the next hold is whatever the first attempt left, or placed now.
    placed = ledger.get_hold(customer_id, next_hold.hold_id)
    if placed is not None:
        return RenewResult(result, True, placed.expires_at, None)
    old = _existing_hold(ledger, customer_id, hold_id)
    if old.active:  # the replay of a refused renew: the old hold is still the grace
        return RenewResult(result, False, None, old.expires_at)
    try:
        placed, _ = ledger.place_hold(customer_id=customer_id, hold=next_hold)
    except InsufficientTokens:
        return RenewResult(result, False, None, None)
    return RenewResult(result, True, placed.expires_at, None)


def release(
    ledger: HoldLedger, payload: Mapping[str, object], *, credential_vm_id: str | None = None
) -> tuple[Hold, int, bool]:
    """`release`: free the hold, capture nothing. (hold, released_mt, replayed)."""
    _fields(payload, {"hold_id"})
    customer_id = require_customer_id(payload.get("customer_id"))
    hold_id = require_idempotency_key(payload.get("hold_id"), "hold_id")
    for _ in range(HOLD_RACE_ATTEMPTS):
        hold = _existing_hold(ledger, customer_id, hold_id)
        check_hold_vm(credential_vm_id, hold.vm_id)
        if not hold.active:
            # A repeated release answers what the first one released.
            return hold, hold.released_mt if hold.status == "released" else 0, True
        if ledger.release_hold(hold):
            return hold, hold.amount_mt, False
    raise ServiceUnavailable("the hold kept changing; retry with the same id")


def sweep_expired(ledger: HoldLedger, now: datetime, *, limit: int = 500) -> int:
    """Release every active hold past its expiry (status `expired`); returns how many."""
    now_iso = now.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    released = 0
    for customer_id, hold_id in ledger.expired_holds(now_iso, limit=limit):
        hold = ledger.get_hold(customer_id, hold_id)
        if hold is not None and hold.active and hold.expires_at <= now_iso:
            released += ledger.release_hold(hold, status="expired")
    return released
