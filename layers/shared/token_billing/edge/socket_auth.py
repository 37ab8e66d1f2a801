"""The WebSocket API's `$connect` authorizer: the same JWT the HTTP API accepts, verified
before API Gateway accepts the connection.

API Gateway's JWT authorizer is for HTTP APIs only, so the WebSocket API runs this check
in a Lambda REQUEST authorizer: signature against the issuer's JWKS, issuer, audience (or
`client_id`, as the HTTP API's authorizer takes for access tokens), expiry. Browsers cannot
set headers on a WebSocket, so the token comes as a subprotocol
(`Sec-WebSocket-Protocol: token-billing.v1, <jwt>`, preferred: it stays out of URLs and
access logs) or as the `token` query parameter. The customer comes from the token's claims
only; a `customer_id` query parameter is accepted only when it names the caller's own
customer, or any customer for the admin scope, which must name one.

It reads nothing but its key configuration (JWT_ISSUER, JWT_AUDIENCE, JWT_JWKS_URL,
JWT_ALGORITHMS) and the issuer's public JWKS, fetched once per container and cached.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt

from token_billing.core.errors import Forbidden, Unauthorized
from token_billing.edge.access import caller_from_jwt
from token_billing.store.table_layout import CUSTOMER_ID_PATTERN

SUBPROTOCOL = "token-billing.v1"
MAX_TOKEN_CHARS = 8192  # a Cognito ID token is ~1-2 KB; anything larger is not ours
JWKS_CACHE_S = 3600
JWKS_TIMEOUT_S = 3


class ConnectRefused(Exception):
    """Raised to API Gateway with the message "Unauthorized": it answers 401 and the
    connection is never accepted (a Deny policy answers 403)."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


class KeysUnavailable(Exception):
    """The issuer's JWKS could not be fetched: API Gateway answers 500, the client retries."""


@dataclass(frozen=True, slots=True)
class JwtConfig:
    issuer: str
    audience: str
    jwks_url: str
    algorithms: tuple[str, ...]

    @classmethod
    def from_environment(cls) -> JwtConfig:
        issuer = os.environ.get("JWT_ISSUER", "").rstrip("/")
        audience = os.environ.get("JWT_AUDIENCE", "")
        if not issuer or not audience:
            raise RuntimeError("JWT_ISSUER and JWT_AUDIENCE must be set (template environment)")
        jwks_url = os.environ.get("JWT_JWKS_URL") or f"{issuer}/.well-known/jwks.json"
        algorithms = tuple(
            name.strip() for name in os.environ.get("JWT_ALGORITHMS", "RS256").split(",")
        )
        # Never "none"; and never a symmetric algorithm beside an asymmetric one (a public
        # key must not be usable as an HMAC secret).
        assert "none" not in {a.lower() for a in algorithms}, algorithms
        assert len({a.upper().startswith("HS") for a in algorithms}) == 1, algorithms
        return cls(issuer, audience, jwks_url, algorithms)


class TokenVerifier:
    """Verifies a JWT against one issuer's keys; the JWKS is cached per container."""

    def __init__(self, config: JwtConfig, jwks: jwt.PyJWKClient | None = None) -> None:
        self.config = config
        self._jwks = jwks or jwt.PyJWKClient(
            config.jwks_url, cache_keys=True, lifespan=JWKS_CACHE_S, timeout=JWKS_TIMEOUT_S
        )

    def claims(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; jwt.PyJWTError for any invalid one."""
        if len(token) > MAX_TOKEN_CHARS:
            raise jwt.DecodeError("token too long")
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as error:
            raise KeysUnavailable(str(error)) from error
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=list(self.config.algorithms),
            issuer=self.config.issuer,
            options={"require": ["exp", "iss", "sub"], "verify_aud": False},
        )
        self._check_audience(claims)
        return claims

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        """`aud` (ID tokens) or, without one, `client_id` (Cognito access tokens), as the
        HTTP API's JWT authorizer checks them."""
        audience = claims.get("aud")
        if audience is None:
            if claims.get("client_id") != self.config.audience:
                raise jwt.InvalidAudienceError("audience does not match")
            return
        audiences = audience if isinstance(audience, list) else [audience]
        if self.config.audience not in audiences:
            raise jwt.InvalidAudienceError("audience does not match")


@cache
def default_verifier() -> TokenVerifier:
    return TokenVerifier(JwtConfig.from_environment())


@dataclass(frozen=True, slots=True)
class SocketGrant:
    """Who may watch which customer's balance over this connection."""

    subject: str
    customer_id: str
    admin: bool
    subprotocol: str | None  # echoed by $connect when the client offered it


def header(headers: Mapping[str, str] | None, name: str) -> str:
    wanted = name.lower()
    return next((v for k, v in (headers or {}).items() if k.lower() == wanted), "")


def connect_token(
    headers: Mapping[str, str] | None, query: Mapping[str, str] | None
) -> tuple[str | None, str | None]:
    """(token, subprotocol to echo) from the connect request: the subprotocol pair first,
    then the `token` query parameter."""
    offered = [p.strip() for p in header(headers, "Sec-WebSocket-Protocol").split(",") if p]
    if SUBPROTOCOL in offered:
        others = [p for p in offered if p != SUBPROTOCOL]
        if others:
            return others[0], SUBPROTOCOL
        return (query or {}).get("token") or None, SUBPROTOCOL
    return (query or {}).get("token") or None, None


def authorize_socket(
    claims: Mapping[str, Any], requested_customer: str | None, subprotocol: str | None
) -> SocketGrant:
    """The grant for a verified token; Forbidden when it may not watch what it asks for."""
    caller = caller_from_jwt(claims, None)
    if requested_customer is not None and not CUSTOMER_ID_PATTERN.match(requested_customer):
        raise Forbidden("customer_id: letters, digits, _ and -")
    if caller.is_admin:
        if requested_customer is None:
            raise Forbidden("the admin scope must name the customer_id to watch")
        return SocketGrant(caller.subject, requested_customer, True, subprotocol)
    if caller.customer_id is None or not CUSTOMER_ID_PATTERN.match(caller.customer_id):
        raise Forbidden("the token names no customer")
    if requested_customer is not None and requested_customer != caller.customer_id:
        raise Forbidden("you may only watch your own tokens")
    return SocketGrant(caller.subject, caller.customer_id, False, subprotocol)


def policy(principal: str, effect: str, method_arn: str, context: dict[str, str]) -> dict[str, Any]:
    """The REQUEST authorizer's answer: an IAM policy on this $connect, and the context
    every later route of the connection receives in `requestContext.authorizer`."""
    return {
        "principalId": principal or "anonymous",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}
            ],
        },
        "context": context,
    }


def authorize_connect(event: Mapping[str, Any], verifier: TokenVerifier) -> dict[str, Any]:
    """Allow or Deny for one $connect; ConnectRefused (401) without a valid token."""
    headers = event.get("headers") or {}
    query = event.get("queryStringParameters") or {}
    method_arn = str(event.get("methodArn", ""))
    token, subprotocol = connect_token(headers, query)
    if not token:
        raise ConnectRefused
    try:
        claims = verifier.claims(token)
    except jwt.PyJWTError as error:
        raise ConnectRefused from error
    try:
        grant = authorize_socket(claims, query.get("customer_id"), subprotocol)
    except (Forbidden, Unauthorized):
        return policy(str(claims.get("sub", "")), "Deny", method_arn, {})
    context = {
        "customer_id": grant.customer_id,
        "subject": grant.subject,
        "admin": "true" if grant.admin else "false",
        "subprotocol": grant.subprotocol or "",
    }
    return policy(grant.subject, "Allow", method_arn, context)
