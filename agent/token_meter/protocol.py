"""The debit function's Invoke API as the agent speaks it (docs/debit-invoke-api.md):
request payloads, ids, and what each kind of answer means for a spooled batch.

The one rule that makes retries safe: a batch is sent with the same key and the same
payload bytes on every attempt, and the service answers a repeat with the first result.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from .actions import VM_RUNTIME, format_quantity

# Grace beyond a hold's paid minutes, so a renew that is a little late finds it alive.
HOLD_GRACE_S = 120
HOLD_EXPIRY_MIN_S = 60
HOLD_EXPIRY_MAX_S = 86_400

# Lambda errors that say "the same request may succeed later": throttling, the service or
# the function not ready. Every other Lambda error is retried too (credentials, policy or
# function name can be fixed without touching the batch) except those that say the payload
# itself can never be accepted.
RETRYABLE_LAMBDA_ERRORS = frozenset(
    {
        "TooManyRequestsException",
        "ServiceException",
        "ResourceConflictException",
        "ResourceNotReadyException",
        "EC2ThrottledException",
        "ThrottlingException",
        "RequestTimeout",
    }
)
PAYLOAD_LAMBDA_ERRORS = frozenset(
    {
        "InvalidRequestContentException",
        "RequestTooLargeException",
        "UnsupportedMediaTypeException",
    }
)
# Kept as refused, never retried on their own: tokens run out, or the VM reached its daily
# limit (`vm_limit_reached`, until the next UTC day or a raised limit); `retry_refused()`
# resends them once that changed.
REFUSAL_CODES = frozenset({"insufficient_tokens", "customer_not_found", "vm_limit_reached"})
# The credential ran out or the service rotated its keys: a fresh credential fixes it, so
# the batch is retried (same key, same payload) once the meter has fetched one.
CREDENTIAL_RETRY_CODES = frozenset({"credential_expired", "credential_invalid"})
USAGE_OPS = frozenset({"debit", "settle", "renew"})


class LambdaInvoker(Protocol):
    """The one method the meter needs from a boto3 Lambda client (tests pass a fake)."""

    def invoke(self, *, FunctionName: str, Payload: bytes) -> Mapping[str, Any]: ...  # noqa: N803


class Verdict(StrEnum):
    SENT = "sent"  # final success: mark sent
    RETRY = "retry"  # same key, same payload, later
    REFUSED = "refused"  # not until a top-up
    INVALID = "invalid"  # the service says the request is wrong: never retry
    FAILED = "failed"  # any other final refusal: never retry


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt to send a batch came to."""

    verdict: Verdict
    reply: dict[str, Any] | None  # the service's JSON reply, when there was one
    code: str | None  # the service's error code, or the transport error's name
    message: str

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.SENT


def new_key(customer_id: str, kind: str = "") -> str:
    """A unique idempotency key or hold id: <customer>-[<kind>-]<uuid4>, at most 106 chars."""
    prefix = f"{customer_id}-{kind}-" if kind else f"{customer_id}-"
    return f"{prefix}{uuid.uuid4()}"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def usage_line(action: str, quantity: Decimal, vm_id: str | None) -> dict[str, str]:
    line = {"action": action, "quantity": format_quantity(quantity)}
    if vm_id is not None:
        line["vm_id"] = vm_id
    return line


def debit_payload(
    customer_id: str, key: str, usage: list[dict[str, str]], occurred_at: str
) -> dict[str, Any]:
    return {
        "op": "debit",
        "customer_id": customer_id,
        "idempotency_key": key,
        "usage": usage,
        "occurred_at": occurred_at,
    }


def vm_runtime_usage(minutes: Decimal, vm_id: str) -> list[dict[str, str]]:
    """The usage of a hold period: [] when no measurable minute passed (callers then
    release instead of settling, or wait before renewing)."""
    return [usage_line(VM_RUNTIME, minutes, vm_id)] if minutes > 0 else []


def hold_expiry_s(hold_minutes: int) -> int:
    return hold_minutes * 60 + HOLD_GRACE_S


def hold_payload(customer_id: str, hold_id: str, hold_minutes: int, vm_id: str) -> dict[str, Any]:
    return {
        "op": "hold",
        "customer_id": customer_id,
        "hold_id": hold_id,
        "amount": str(hold_minutes),  # vm_runtime is 1 token per minute
        "expires_in_s": hold_expiry_s(hold_minutes),
        "vm_id": vm_id,
    }


def renew_payload(
    customer_id: str,
    hold_id: str,
    next_hold_id: str,
    hold_minutes: int,
    usage: list[dict[str, str]],
    vm_id: str,
) -> dict[str, Any]:
    """Settle `usage` against `hold_id` and place `next_hold_id` for the same VM. `usage`
    must not be empty (the service prices 1..1000 lines)."""
    assert usage, "a renew carries at least one usage line"
    return {
        "op": "renew",
        "customer_id": customer_id,
        "hold_id": hold_id,
        "usage": usage,
        "next_hold_id": next_hold_id,
        "amount": str(hold_minutes),
        "expires_in_s": hold_expiry_s(hold_minutes),
        "vm_id": vm_id,  # the next hold's VM
    }


def settle_payload(customer_id: str, hold_id: str, usage: list[dict[str, str]]) -> dict[str, Any]:
    return {"op": "settle", "customer_id": customer_id, "hold_id": hold_id, "usage": usage}


def release_payload(customer_id: str, hold_id: str) -> dict[str, Any]:
    return {"op": "release", "customer_id": customer_id, "hold_id": hold_id}


def classify_reply(reply: Mapping[str, Any]) -> Outcome:
    """A parsed `{"ok": ...}` reply of the debit function as a verdict."""
    if reply.get("ok") is True:
        return Outcome(Verdict.SENT, dict(reply), None, "ok")
    error = reply.get("error")
    error = error if isinstance(error, Mapping) else {}
    code = error.get("code")
    code = code if isinstance(code, str) else "unknown_error"
    message = f"{code}: {error.get('message', '')}"
    if error.get("retryable") is True or code in CREDENTIAL_RETRY_CODES:
        return Outcome(Verdict.RETRY, dict(reply), code, message)
    if code in REFUSAL_CODES:
        return Outcome(Verdict.REFUSED, dict(reply), code, message)
    if code == "invalid_request":
        return Outcome(Verdict.INVALID, dict(reply), code, message)
    return Outcome(Verdict.FAILED, dict(reply), code, message)


def refused_vm(outcome: Outcome) -> str | None:
    """The VM a `vm_limit_reached` refusal names (the VM at its daily limit), else None."""
    if outcome.code != "vm_limit_reached" or outcome.reply is None:
        return None
    error = outcome.reply.get("error")
    vm_id = error.get("vm_id") if isinstance(error, Mapping) else None
    return vm_id if isinstance(vm_id, str) else None


def with_credential(payload_text: str, credential: str | None) -> str:
    """The spooled payload with the VM's current credential added (never spooled itself)."""
    if credential is None:
        return payload_text
    payload = json.loads(payload_text)
    payload["credential"] = credential
    return json.dumps(payload, separators=(",", ":"))


def invoke_once(
    client: LambdaInvoker, function_name: str, payload_text: str, credential: str | None = None
) -> Outcome:
    """One synchronous invoke of the debit function, its every failure mode as an Outcome."""
    try:
        sent = with_credential(payload_text, credential)
        response = client.invoke(FunctionName=function_name, Payload=sent.encode())
        body = response["Payload"].read()  # the read can time out too
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "ClientError"))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = f"{code} (HTTP {status}): {error}"
        if code in PAYLOAD_LAMBDA_ERRORS:
            return Outcome(Verdict.FAILED, None, code, message)
        return Outcome(Verdict.RETRY, None, code, message)
    except (
        ReadTimeoutError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ConnectionClosedError,
    ) as error:
        return Outcome(Verdict.RETRY, None, type(error).__name__, str(error))
    except BotoCoreError as error:  # e.g. no credentials yet: fixable without the batch
        return Outcome(Verdict.RETRY, None, type(error).__name__, str(error))
    function_error = response.get("FunctionError")
    if function_error:
        detail = body[:500].decode(errors="replace")
        return Outcome(
            Verdict.RETRY, None, "FunctionError", f"FunctionError {function_error}: {detail}"
        )
    status = response.get("StatusCode")
    if status != 200:
        return Outcome(Verdict.RETRY, None, "StatusCode", f"invoke StatusCode {status}")
    try:
        reply = json.loads(body)
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        detail = body[:500].decode(errors="replace")
        return Outcome(Verdict.RETRY, None, "MalformedReply", f"unexpected reply: {detail}")
    return classify_reply(reply)
