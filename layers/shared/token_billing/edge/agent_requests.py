"""The VM agents' requests: the debit function's ops, bound to the VM's credential and
checked field by field into the domain's request records, before any DynamoDB request.

Hand-written rather than pydantic: the debit function's cold start budget is a few
milliseconds over bare boto3, and pydantic's import alone is ~30 ms.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta

from token_billing.core.clock import iso_utc
from token_billing.core.errors import InvalidRequest
from token_billing.core.units import MT_PER_TOKEN, QuantityError, tokens_to_mt
from token_billing.domain.agent_credentials import (
    AgentCredential,
    CredentialKeys,
    UnknownCredentialKey,
    bind_to_credential,
    verify_credential,
)
from token_billing.domain.debits import DebitRequest
from token_billing.domain.holds import (
    HoldRequest,
    HoldSpec,
    ReleaseRequest,
    RenewRequest,
    SettleRequest,
)
from token_billing.domain.usage import price_batch
from token_billing.integrations.agent_credential_keys import (
    credential_keys_document,
    credentials_required,
    reread_for_unknown_key,
)
from token_billing.store.table_layout import CUSTOMER_ID_PATTERN, IDEMPOTENCY_KEY_PATTERN

OPS = ("debit", "hold", "settle", "renew", "release")
# Fields every op may carry besides its own: the op's name and the customer it acts for.
COMMON_FIELDS = frozenset({"op", "customer_id"})
DEBIT_FIELDS = frozenset({"idempotency_key", "usage", "occurred_at", "return_balance"})
HOLD_FIELDS = frozenset({"hold_id", "amount", "expires_in_s", "vm_id"})
SETTLE_FIELDS = frozenset({"hold_id", "usage", "occurred_at"})
RENEW_FIELDS = frozenset(
    {"hold_id", "usage", "next_hold_id", "amount", "expires_in_s", "vm_id", "occurred_at"}
)
RELEASE_FIELDS = frozenset({"hold_id"})
HOLD_EXPIRY_MIN_S = 60
HOLD_EXPIRY_MAX_S = 24 * 3600
HOLD_MAX_MT = 10**9 * MT_PER_TOKEN


def op_name(event: object) -> str:
    """The op an invoke asks for (`debit` when it names none), or InvalidRequest."""
    op = event.get("op", "debit") if isinstance(event, dict) else None
    if op not in OPS:
        raise InvalidRequest(f"op must be one of: {', '.join(OPS)}")
    return str(op)


def authorized_payload(event: Mapping[str, object]) -> tuple[dict[str, object], str | None]:
    """The op's payload without its credential, and the VM the credential is for. Checked
    before any DynamoDB request: a refused op has sent nothing (RequireAgentCredentials)."""
    payload = {name: value for name, value in event.items() if name != "credential"}
    if not credentials_required():
        return payload, None
    credential = _verified_credential(event.get("credential"), now_s=int(time.time()))
    return bind_to_credential(credential, payload), credential.vm_id


def _verified_credential(token: object, *, now_s: int) -> AgentCredential:
    """The credential verified under the cached keys; under a key id they lack, once more
    under the document read again (a key made current since; bounded per container)."""
    keys = CredentialKeys.from_json(credential_keys_document())
    try:
        return verify_credential(token, keys, now_s=now_s)
    except UnknownCredentialKey:
        fresh = reread_for_unknown_key()
        if fresh is None:
            raise
        return verify_credential(token, CredentialKeys.from_json(fresh), now_s=now_s)


# ---- field checks ----------------------------------------------------------------------


def require_customer_id(value: object) -> str:
    if not isinstance(value, str) or not CUSTOMER_ID_PATTERN.match(value):
        raise InvalidRequest("customer_id is required: 1-64 characters of letters, digits, _ and -")
    return value


def require_idempotency_key(value: object, field: str = "idempotency_key") -> str:
    if not isinstance(value, str) or not IDEMPOTENCY_KEY_PATTERN.match(value):
        raise InvalidRequest(
            f"{field} is required: 1-128 characters of letters, digits and _.:/+=-"
        )
    return value


def parse_occurred_at(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidRequest("occurred_at must be an ISO 8601 timestamp with a time zone")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest("occurred_at must be an ISO 8601 timestamp with a time zone") from None
    if moment.tzinfo is None:
        raise InvalidRequest("occurred_at must carry a time zone, e.g. 2026-11-25T10:00:00Z")
    return value


def _only(payload: Mapping[str, object], fields: frozenset[str]) -> None:
    unknown = set(payload) - fields - COMMON_FIELDS
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(sorted(map(str, unknown)))}")


def _object(payload: object, op: str) -> Mapping[str, object]:
    if not isinstance(payload, Mapping):
        raise InvalidRequest(f"the {op} payload must be a JSON object")
    return payload


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
    return iso_utc(now + timedelta(seconds=value))


def _hold_spec(payload: Mapping[str, object], id_field: str, now: datetime) -> HoldSpec:
    hold_id = require_idempotency_key(payload.get(id_field), id_field)
    amount_mt = _amount_mt(payload.get("amount"))
    expires_at = _expires_at(payload.get("expires_in_s"), now)
    vm_id = payload.get("vm_id")
    if vm_id is not None:
        if not isinstance(vm_id, str):
            raise InvalidRequest("vm_id must be a string")
        require_idempotency_key(vm_id, "vm_id")
    return HoldSpec(hold_id, amount_mt, expires_at, vm_id)


# ---- one parser per op -----------------------------------------------------------------


def parse_debit_request(payload: object, credential_vm_id: str | None = None) -> DebitRequest:
    """A debit invoke payload as a DebitRequest, or InvalidRequest saying what is wrong."""
    payload = _object(payload, "debit")
    _only(payload, DEBIT_FIELDS)
    return_balance = payload.get("return_balance", False)
    if not isinstance(return_balance, bool):
        raise InvalidRequest("return_balance must be true or false")
    customer_id = require_customer_id(payload.get("customer_id"))
    idempotency_key = require_idempotency_key(payload.get("idempotency_key"))
    occurred_at = parse_occurred_at(payload.get("occurred_at"))
    # Priced last: every other field is checked before the lines are.
    usage = price_batch(payload.get("usage"), occurred_at=occurred_at or None)
    return DebitRequest(
        customer_id, idempotency_key, usage, occurred_at, return_balance, credential_vm_id
    )


def parse_hold_request(payload: object, now: datetime) -> HoldRequest:
    payload = _object(payload, "hold")
    _only(payload, HOLD_FIELDS)
    customer_id = require_customer_id(payload.get("customer_id"))
    return HoldRequest(customer_id, _hold_spec(payload, "hold_id", now))


def parse_settle_request(payload: object, credential_vm_id: str | None) -> SettleRequest:
    payload = _object(payload, "settle")
    _only(payload, SETTLE_FIELDS)
    customer_id = require_customer_id(payload.get("customer_id"))
    hold_id = require_idempotency_key(payload.get("hold_id"), "hold_id")
    parse_occurred_at(payload.get("occurred_at"))
    usage = price_batch(payload.get("usage"))
    return SettleRequest(customer_id, hold_id, usage, credential_vm_id)


def parse_renew_request(
    payload: object, credential_vm_id: str | None, now: datetime
) -> RenewRequest:
    payload = _object(payload, "renew")
    _only(payload, RENEW_FIELDS)
    customer_id = require_customer_id(payload.get("customer_id"))
    hold_id = require_idempotency_key(payload.get("hold_id"), "hold_id")
    parse_occurred_at(payload.get("occurred_at"))
    next_hold = _hold_spec(payload, "next_hold_id", now)
    if next_hold.hold_id == hold_id:
        raise InvalidRequest("next_hold_id must differ from hold_id")
    usage = price_batch(payload.get("usage"))
    return RenewRequest(SettleRequest(customer_id, hold_id, usage, credential_vm_id), next_hold)


def parse_release_request(payload: object, credential_vm_id: str | None) -> ReleaseRequest:
    payload = _object(payload, "release")
    _only(payload, RELEASE_FIELDS)
    customer_id = require_customer_id(payload.get("customer_id"))
    hold_id = require_idempotency_key(payload.get("hold_id"), "hold_id")
    return ReleaseRequest(customer_id, hold_id, credential_vm_id)
