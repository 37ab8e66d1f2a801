"""The dev server's identity provider, shaped like the stack's Cognito user pool: RS256
tokens signed with this checkout's own key pair, whose public key the dev server serves as
a JWKS, with the claims of Cognito's ID and access tokens.

The local HTTP API verifies them as API Gateway's JWT authorizer does, with the socket
authorizer's code (`token_billing.edge.socket_auth`): RSA only, the `kid` in the JWKS,
`iss`, `aud` (or `client_id` when there is no `aud`), `exp`, `nbf`. Mint one with:

    .venv/bin/python -m local.identity --customer cust_demo          # a customer
    .venv/bin/python -m local.identity --admin                       # support staff
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from local.template import ROOT
from token_billing.edge.socket_auth import JwtConfig, TokenVerifier

ISSUER = "http://127.0.0.1:3000/local-identity"
# The app client's id: `aud` of an ID token, `client_id` of an access token (Cognito's).
AUDIENCE = "token-billing-local"
ALGORITHM = "RS256"
KEY_PATH = ROOT / ".local" / "jwt-signing-key.pem"
JWKS_PATH = "/_local/identity/jwks.json"
ADMIN_GROUP = "admin"


@cache
def signing_key(path: Path = KEY_PATH) -> rsa.RSAPrivateKey:
    """This checkout's own RSA key, made on first use (never committed). Two processes
    making it at once agree on one: the file is linked into place only if none is there."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_bytes(pem)
        partial.chmod(0o600)
        try:
            os.link(partial, path)
        except FileExistsError:
            pass  # another process made it first: use that one
        finally:
            partial.unlink()
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{path} is not an RSA private key")
    return loaded


def public_jwk(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """The key's public half as a JWK, its `kid` the RFC 7638 thumbprint."""
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    canonical = json.dumps({name: jwk[name] for name in ("e", "kty", "n")}, separators=(",", ":"))
    thumbprint = hashlib.sha256(canonical.encode()).digest()
    kid = base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()
    return {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def jwks(key: rsa.RSAPrivateKey | None = None) -> dict[str, Any]:
    """The JSON Web Key Set the dev server serves, as Cognito serves its user pool's."""
    return {"keys": [public_jwk(key or signing_key())]}


def mint(
    *,
    customer_id: str | None = None,
    admin: bool = False,
    subject: str | None = None,
    ttl_s: int = 3600,
    access: bool = False,
    claims: Mapping[str, Any] | None = None,
    key: rsa.RSAPrivateKey | None = None,
) -> str:
    """A token as the stack's Cognito user pool issues it: an ID token (`aud` = the client
    id, `custom:customer_id`, `cognito:groups`), or with `access` an access token
    (`client_id`, `scope`; Cognito puts no custom attribute in it). `claims` overrides or
    adds claims; `key` signs with another key under this key's `kid`."""
    now = int(time.time())
    subject = subject or f"user-{customer_id or 'admin'}-{uuid.uuid4().hex[:8]}"
    body: dict[str, Any] = {
        "sub": subject,
        "iss": ISSUER,
        "token_use": "access" if access else "id",
        "auth_time": now,
        "iat": now,
        "exp": now + ttl_s,
        "jti": str(uuid.uuid4()),
    }
    if admin:
        body["cognito:groups"] = [ADMIN_GROUP]
    if access:
        if customer_id:
            raise ValueError("Cognito puts no custom attribute in an access token: no customer")
        body.update({"client_id": AUDIENCE, "username": subject, "scope": "openid email"})
    else:
        body.update({"aud": AUDIENCE, "cognito:username": subject})
        if customer_id:
            body["custom:customer_id"] = customer_id
    body.update(claims or {})
    kid = public_jwk(signing_key())["kid"]
    return jwt.encode(body, key or signing_key(), algorithm=ALGORITHM, headers={"kid": kid})


class LocalJwks(jwt.PyJWKClient):
    """The dev identity's key set, read where the dev server serves it from rather than
    over HTTP: the same lookup by `kid` as the socket authorizer's JWKS client."""

    def __init__(self) -> None:
        super().__init__(f"http://127.0.0.1{JWKS_PATH}", cache_jwk_set=False)

    def fetch_data(self) -> Any:
        return jwks()


def verifier() -> TokenVerifier:
    """What the local HTTP API's JWT authorizer checks tokens with: API Gateway's rules,
    through the socket authorizer's code (RS256 only, as API Gateway takes RSA only)."""
    config = JwtConfig(ISSUER, AUDIENCE, f"http://127.0.0.1{JWKS_PATH}", (ALGORITHM,))
    return TokenVerifier(config, jwks=LocalJwks())


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
    parser.add_argument("--admin", action="store_true", help="in the admin group")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    parser.add_argument(
        "--access", action="store_true", help="an access token (no customer id) instead"
    )
    args = parser.parse_args(argv)
    if not args.customer and not args.admin:
        parser.error("name a --customer, or ask for --admin")
    token = mint(customer_id=args.customer, admin=args.admin, ttl_s=args.ttl, access=args.access)
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
