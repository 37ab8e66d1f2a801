"""Who is calling: the identity the HTTP API's JWT authorizer verified, and what it may see.

API Gateway verifies the token's signature, issuer, audience and expiry before the
function runs and hands over the claims; this module only decides what they allow. A
customer reads and spends only their own tokens; the admin scope reads anyone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from token_billing.core.errors import Forbidden, Unauthorized

CUSTOMER_CLAIMS = ("customer_id", "custom:customer_id")
ADMIN_SCOPE = "admin"


@dataclass(frozen=True, slots=True)
class Caller:
    subject: str
    customer_id: str | None
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        # Cognito writes resource-server scopes as "<identifier>/admin".
        return any(
            scope == ADMIN_SCOPE or scope.endswith("/" + ADMIN_SCOPE) for scope in self.scopes
        )


def caller_from_jwt(claims: Mapping[str, Any] | None, scopes: Iterable[str] | None) -> Caller:
    """The caller behind a verified JWT; Unauthorized when the request carried none."""
    if not claims or not claims.get("sub"):
        raise Unauthorized("a bearer token is required")
    scope_set = set(scopes or ())
    # API Gateway passes `scope` as scopes only for access tokens; read the claim too.
    scope_set.update(_claim_words(claims.get("scope") or claims.get("scp")))
    # Cognito's `admin` group maps to the admin scope (ID tokens carry no scopes).
    if ADMIN_SCOPE in _claim_words(claims.get("cognito:groups")):
        scope_set.add(ADMIN_SCOPE)
    customer_id = next((str(claims[name]) for name in CUSTOMER_CLAIMS if claims.get(name)), None)
    return Caller(str(claims["sub"]), customer_id, frozenset(scope_set))


def _claim_words(value: Any) -> set[str]:
    """A list claim as words: API Gateway hands arrays over as "[a b]" strings."""
    if isinstance(value, list):
        return {str(item) for item in value}
    if isinstance(value, str):
        return set(value.strip("[]").replace(",", " ").split())
    return set()


def authorize_customer(caller: Caller, customer_id: str) -> None:
    """Forbidden unless the caller is this customer or an admin. The message says nothing
    about whether the other customer exists."""
    if caller.is_admin or (caller.customer_id is not None and caller.customer_id == customer_id):
        return
    raise Forbidden("you may only access your own tokens")


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise Forbidden("this operation needs the admin scope")
