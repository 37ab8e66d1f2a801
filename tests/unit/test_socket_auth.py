"""The WebSocket $connect authorizer as deployed: RS256 tokens checked against the issuer's
JWKS (issuer, audience or client_id, signature, expiry), the customer from the claims only.

The JWKS is served by a stub of PyJWKClient built from a real key set, so the same
`jwt.decode` path runs as against Cognito; nothing reaches the network.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.conftest import fake_context
from token_billing.edge import socket_auth
from token_billing.edge.socket_auth import (
    ConnectRefused,
    JwtConfig,
    TokenVerifier,
    authorize_connect,
    connect_token,
)

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test"
AUDIENCE = "client-123"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/$connect"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class StubJwks:
    """PyJWKClient's one method, over a fixed key set (kid -> public key)."""

    def __init__(self, keys: dict[str, Any]) -> None:
        self.keys = {
            kid: jwt.PyJWK({**json.loads(RSAAlgorithm.to_jwk(key)), "kid": kid, "alg": "RS256"})
            for kid, key in keys.items()
        }

    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        if kid not in self.keys:
            raise jwt.PyJWKClientError(f"no key {kid}")
        return self.keys[kid]


def verifier() -> TokenVerifier:
    config = JwtConfig(ISSUER, AUDIENCE, f"{ISSUER}/.well-known/jwks.json", ("RS256",))
    return TokenVerifier(config, StubJwks({"k1": KEY.public_key()}))  # type: ignore[arg-type]


def token(key: Any = KEY, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now,
        "exp": now + 600,
        "custom:customer_id": "cust_a",
        **claims,
    }
    body = {name: value for name, value in body.items() if value is not None}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def connect_event(
    token_value: str | None, *, query: dict[str, str] | None = None, via: str = "subprotocol"
) -> dict[str, Any]:
    headers = {"Host": "abc123.execute-api.us-east-1.amazonaws.com"}
    query = dict(query or {})
    if token_value and via == "subprotocol":
        headers["Sec-WebSocket-Protocol"] = f"token-billing.v1, {token_value}"
    elif token_value:
        query["token"] = token_value
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": headers,
        "queryStringParameters": query or None,
        "requestContext": {"routeKey": "$connect", "eventType": "CONNECT"},
    }


def effect(answer: dict[str, Any]) -> str:
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Resource"] == METHOD_ARN
    assert statement["Action"] == "execute-api:Invoke"
    return str(statement["Effect"])


# ---- refused before the connection is accepted ------------------------------------------


@pytest.mark.parametrize(
    ("case", "bad_token"),
    [
        ("forged: signed by another key", lambda: token(key=OTHER_KEY)),
        ("unknown key id", lambda: token(kid="k9")),
        ("expired", lambda: token(iat=int(time.time()) - 7200, exp=int(time.time()) - 1)),
        ("wrong audience", lambda: token(aud="another-client")),
        ("wrong issuer", lambda: token(iss="https://evil.example.com")),
        ("no expiry", lambda: token(exp=None)),
        ("no subject", lambda: token(sub=None)),
        ("alg none", lambda: jwt.encode({"sub": "x"}, None, algorithm="none")),  # type: ignore[arg-type]
        ("HS256 with the public key as secret", lambda: _hs256_with_public_key()),
        ("not a JWT", lambda: "abc.def"),
    ],
)
def test_invalid_tokens_raise_unauthorized(case: str, bad_token: Any) -> None:
    with pytest.raises(ConnectRefused, match=r"^Unauthorized$"):
        authorize_connect(connect_event(bad_token()), verifier())


def _hs256_with_public_key() -> str:
    from cryptography.hazmat.primitives import serialization

    public = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u", "exp": now + 600}
    # PyJWT refuses to sign with a PEM key as an HMAC secret; build the token by hand.
    import base64
    import hashlib
    import hmac

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    body = part(json.dumps(claims).encode())
    signature = hmac.new(public, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{part(signature)}"


def test_a_missing_token_raises_unauthorized() -> None:
    with pytest.raises(ConnectRefused):
        authorize_connect(connect_event(None), verifier())
    event = connect_event(None)
    event["headers"]["Sec-WebSocket-Protocol"] = "token-billing.v1"
    with pytest.raises(ConnectRefused):
        authorize_connect(event, verifier())


def test_another_customers_id_is_denied() -> None:
    answer = authorize_connect(connect_event(token(), query={"customer_id": "cust_b"}), verifier())
    assert effect(answer) == "Deny"
    assert answer["context"] == {}


def test_a_token_without_a_customer_is_denied() -> None:
    answer = authorize_connect(
        connect_event(token(KEY, "k1", **{"custom:customer_id": None})), verifier()
    )
    assert effect(answer) == "Deny"


def test_an_admin_must_name_the_customer_to_watch() -> None:
    admin = token(KEY, "k1", **{"custom:customer_id": None, "cognito:groups": ["admin"]})
    assert effect(authorize_connect(connect_event(admin), verifier())) == "Deny"
    answer = authorize_connect(connect_event(admin, query={"customer_id": "cust_z"}), verifier())
    assert effect(answer) == "Allow"
    assert answer["context"]["customer_id"] == "cust_z"
    assert answer["context"]["admin"] == "true"


def test_a_malformed_customer_id_is_denied() -> None:
    admin = token(scope="admin")
    answer = authorize_connect(connect_event(admin, query={"customer_id": "a/b"}), verifier())
    assert effect(answer) == "Deny"


# ---- accepted ---------------------------------------------------------------------------


def test_a_valid_token_as_a_subprotocol_is_allowed_for_its_own_customer() -> None:
    answer = authorize_connect(connect_event(token()), verifier())
    assert effect(answer) == "Allow"
    assert answer["principalId"] == "user-1"
    assert answer["context"] == {
        "customer_id": "cust_a",
        "subject": "user-1",
        "admin": "false",
        "subprotocol": "token-billing.v1",
    }


def test_a_valid_token_in_the_query_string_is_allowed_and_names_no_subprotocol() -> None:
    answer = authorize_connect(connect_event(token(), via="query"), verifier())
    assert effect(answer) == "Allow"
    assert answer["context"]["subprotocol"] == ""


def test_its_own_customer_id_may_be_named() -> None:
    answer = authorize_connect(connect_event(token(), query={"customer_id": "cust_a"}), verifier())
    assert effect(answer) == "Allow"


def test_an_access_token_with_client_id_instead_of_aud_is_accepted() -> None:
    access = token(aud=None, client_id=AUDIENCE)
    assert effect(authorize_connect(connect_event(access), verifier())) == "Allow"
    wrong = token(aud=None, client_id="other")
    with pytest.raises(ConnectRefused):
        authorize_connect(connect_event(wrong), verifier())


def test_connect_token_reads_the_subprotocol_pair_first() -> None:
    headers = {"sec-websocket-protocol": "token-billing.v1, abc.def.ghi"}
    assert connect_token(headers, {"token": "q"}) == ("abc.def.ghi", "token-billing.v1")
    assert connect_token({}, {"token": "q"}) == ("q", None)
    assert connect_token({"Sec-WebSocket-Protocol": "chat"}, None) == (None, None)


def test_config_refuses_none_and_mixed_algorithms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ISSUER", ISSUER + "/")
    monkeypatch.setenv("JWT_AUDIENCE", AUDIENCE)
    monkeypatch.delenv("JWT_JWKS_URL", raising=False)
    monkeypatch.delenv("JWT_ALGORITHMS", raising=False)
    config = JwtConfig.from_environment()
    assert config.jwks_url == f"{ISSUER}/.well-known/jwks.json"
    assert config.algorithms == ("RS256",)
    for algorithms in ("none", "RS256,HS256"):
        monkeypatch.setenv("JWT_ALGORITHMS", algorithms)
        with pytest.raises(AssertionError):
            JwtConfig.from_environment()


# ---- the handler ----------------------------------------------------------------------


def test_the_handler_answers_a_policy_or_raises_unauthorized(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import realtime_authorizer_handler

    monkeypatch.setattr(socket_auth, "default_verifier", verifier)
    monkeypatch.setattr(realtime_authorizer_handler, "default_verifier", verifier)
    answer = realtime_authorizer_handler.lambda_handler(connect_event(token()), fake_context())
    assert effect(answer) == "Allow"
    with pytest.raises(ConnectRefused):
        realtime_authorizer_handler.lambda_handler(
            connect_event(token(key=OTHER_KEY)), fake_context()
        )
