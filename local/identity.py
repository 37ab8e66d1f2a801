"""The dev server's identity provider: JWTs signed with a local development key.

`make dev` verifies bearer tokens on every route that has the JWT authorizer in
template.yaml, as API Gateway would, and hands the claims to the handler in the event.
Mint one with:

    .venv/bin/python -m local.identity --customer cust_demo          # a customer
    .venv/bin/python -m local.identity --admin                       # support staff
"""

from __future__ import annotations

import argparse
import base64
import secrets
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt

from local.template import ROOT

ISSUER = "http://127.0.0.1:3000/local-identity"
AUDIENCE = "token-billing-local"
ALGORITHM = "HS256"
KEY_PATH = ROOT / ".local" / "jwt-signing-key"
# The WebSocket authorizer finds keys by `kid` in a JWKS, as it does at a real issuer; the
# dev server serves this one (a symmetric key: loopback only, development only).
KEY_ID = "local-dev"
JWKS_PATH = "/_local/identity/jwks.json"


def signing_key(path: Path = KEY_PATH) -> bytes:
    """This checkout's own random key, made on first use (never committed)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(secrets.token_bytes(32))
        path.chmod(0o600)
    return path.read_bytes()


def mint(
    *,
    customer_id: str | None = None,
    admin: bool = False,
    subject: str | None = None,
    ttl_s: int = 3600,
    key: bytes | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject or f"user-{customer_id or 'admin'}-{uuid.uuid4().hex[:8]}",
        "iat": now,
        "exp": now + ttl_s,
    }
    if customer_id:
        claims["customer_id"] = customer_id
    if admin:
        claims["scope"] = "admin"
    return jwt.encode(claims, key or signing_key(), algorithm=ALGORITHM, headers={"kid": KEY_ID})


def jwks(key: bytes | None = None) -> dict[str, Any]:
    """The development key as a JSON Web Key Set (`kty: oct`), for the socket authorizer."""
    k = base64.urlsafe_b64encode(key or signing_key()).rstrip(b"=").decode()
    return {"keys": [{"kty": "oct", "kid": KEY_ID, "alg": ALGORITHM, "use": "sig", "k": k}]}


def verify(token: str, key: bytes | None = None) -> dict[str, Any]:
    """The claims of a valid token; raises jwt.InvalidTokenError otherwise."""
    claims: dict[str, Any] = jwt.decode(
        token,
        key or signing_key(),
        algorithms=[ALGORITHM],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "sub", "iss", "aud"]},
    )
    return claims


def authorizer_context(claims: dict[str, Any]) -> dict[str, Any]:
    """`requestContext.authorizer` as API Gateway's JWT authorizer fills it: claim values
    as strings (arrays as "[a b]"), scopes from the `scope` claim."""
    shown = {
        name: "[" + " ".join(map(str, value)) + "]" if isinstance(value, list) else str(value)
        for name, value in claims.items()
    }
    scope = claims.get("scope")
    return {"jwt": {"claims": shown, "scopes": scope.split() if isinstance(scope, str) else None}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.identity", description=__doc__)
    parser.add_argument("--customer", help="customer id the token speaks for")
    parser.add_argument("--admin", action="store_true", help="add the admin scope")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    args = parser.parse_args(argv)
    if not args.customer and not args.admin:
        parser.error("name a --customer, or ask for --admin")
    token = mint(customer_id=args.customer, admin=args.admin, ttl_s=args.ttl)
    print(token)
    target = args.customer or "cust_demo"
    print(
        f'\ncurl -H "Authorization: Bearer {token}" '
        f"http://127.0.0.1:3000/api/v1/customers/{target}/tokens",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
