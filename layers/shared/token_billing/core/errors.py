"""Every error the service reports, each with a stable code, an HTTP status and whether a
retry can fix it. Handlers turn these into the one error shape:
`{"error": {"code", "message", "retryable"}}`.
"""

from __future__ import annotations

from typing import Any


class BillingError(Exception):
    code = "internal_error"
    status = 500
    retryable = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
        }
        error.update(self.details)
        return {"error": error}


class InvalidRequest(BillingError):
    code = "invalid_request"
    status = 400


class Unauthorized(BillingError):
    code = "unauthorized"
    status = 401


class Forbidden(BillingError):
    code = "forbidden"
    status = 403


class NotFound(BillingError):
    code = "not_found"
    status = 404


class CustomerNotFound(NotFound):
    code = "customer_not_found"


class InsufficientTokens(BillingError):
    code = "insufficient_tokens"
    status = 402


class VmLimitReached(BillingError):
    """The VM's captured spending today would pass its daily limit (or a hold would not fit
    in what is left of it): refused whole, nothing moved. Not retryable before the limit
    resets at the next UTC midnight or the customer raises it."""

    code = "vm_limit_reached"
    status = 402


class IdempotencyKeyReused(BillingError):
    """The key was already used for a different request; the first result stands."""

    code = "idempotency_key_reused"
    status = 409


class Conflict(BillingError):
    code = "conflict"
    status = 409


class ServiceUnavailable(BillingError):
    """Throttling, a lost transaction race or a dependency outage: the same call may succeed."""

    code = "service_unavailable"
    status = 503
    retryable = True
