"""Issue 22: the dev server takes only the tokens API Gateway's JWT authorizer takes (RSA,
`kid` in the JWKS, `iss`, `aud` or `client_id`, `exp`, `nbf`), and the socket refuses the
same ones: the dev identity's RS256 ID and access tokens pass both, and every token AWS
would refuse is a 401 `{"message": "Unauthorized"}` on the HTTP API and a refused handshake.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from local import identity
from local.devserver import DevServer, build_server
from local.websocket import local_environment
from tests.integration.helpers import http_json
from token_billing.edge import socket_auth
from token_billing.edge.socket_auth import SUBPROTOCOL

CUSTOMER = "cust_token_parity"
BALANCE = f"/api/v1/customers/{CUSTOMER}/tokens"


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    server = build_server("127.0.0.1", 0)
    server.fake_events.log_path = None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    server.start_websocket_api(0)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def socket_environment(server: DevServer, local_aws: None) -> None:
    """The socket's functions as a deployment configures them, pointed at this server."""
    os.environ.update(local_environment(server.url))
    socket_auth.default_verifier.cache_clear()


def _part(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _kid() -> str:
    return str(identity.jwks()["keys"][0]["kid"])


def _valid_claims() -> dict[str, object]:
    return jwt.decode(identity.mint(customer_id=CUSTOMER), options={"verify_signature": False})


def hs256() -> str:
    """HMAC-signed, with the dev key's kid: API Gateway takes RSA only."""
    return jwt.encode(
        _valid_claims(), b"a-shared-secret-32-bytes-long!!!", "HS256", {"kid": _kid()}
    )


def hs256_keyed_with_the_public_key() -> str:
    """The algorithm confusion attack: the published public key as an HMAC secret."""
    public = (
        identity.signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = _part(json.dumps({"alg": "HS256", "kid": _kid()}).encode())
    body = _part(json.dumps(_valid_claims()).encode())
    signature = hmac.new(public, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_part(signature)}"


def unknown_kid() -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(_valid_claims(), other, "RS256", {"kid": "not-in-the-jwks"})


def no_kid() -> str:
    return jwt.encode(_valid_claims(), identity.signing_key(), "RS256")


def another_key_under_our_kid() -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return identity.mint(customer_id=CUSTOMER, key=other)


def alg_none() -> str:
    header = _part(json.dumps({"alg": "none", "kid": _kid()}).encode())
    return f"{header}.{_part(json.dumps(_valid_claims()).encode())}."


REFUSED: dict[str, Callable[[], str]] = {
    "HS256": hs256,
    "HS256 keyed with the public key": hs256_keyed_with_the_public_key,
    "alg none": alg_none,
    "unknown kid": unknown_kid,
    "no kid": no_kid,
    "another key under the JWKS kid": another_key_under_our_kid,
    "wrong aud": lambda: identity.mint(customer_id=CUSTOMER, claims={"aud": "another-client"}),
    "access token of another client": lambda: identity.mint(
        admin=True, access=True, claims={"client_id": "another-client"}
    ),
    "wrong issuer": lambda: identity.mint(
        customer_id=CUSTOMER, claims={"iss": "https://issuer.example.com"}
    ),
    "expired": lambda: identity.mint(customer_id=CUSTOMER, ttl_s=-60),
    "not valid yet (nbf)": lambda: identity.mint(
        customer_id=CUSTOMER, claims={"nbf": int(time.time()) + 600}
    ),
}


def socket_status(server: DevServer, token: str) -> int:
    """101 when the socket opened, else the handshake's HTTP status."""
    assert server.websocket_api is not None
    try:
        with connect(
            server.websocket_api.url + "/",
            subprotocols=[SUBPROTOCOL, token],  # type: ignore[list-item]
            open_timeout=10,
        ):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_token_api_gateway_refuses_is_a_401_on_the_http_api_and_on_the_socket(
    server: DevServer, case: str
) -> None:
    token = REFUSED[case]()
    assert http_json(server.url, "GET", BALANCE, token=token) == (
        401,
        {"message": "Unauthorized"},
    )
    assert socket_status(server, token) == 401


def test_the_dev_identitys_tokens_pass_both(server: DevServer) -> None:
    id_token = identity.mint(customer_id=CUSTOMER)
    status, body = http_json(server.url, "GET", BALANCE, token=id_token)
    assert status == 200, body
    assert socket_status(server, id_token) == 101
    # An access token carries `client_id`, no `aud`; the admin group reads any customer.
    access_token = identity.mint(admin=True, access=True)
    assert "aud" not in jwt.decode(access_token, options={"verify_signature": False})
    status, body = http_json(server.url, "GET", BALANCE, token=access_token)
    assert status == 200, body
    # API Gateway's identity source takes the token with or without "Bearer ".
    status, body = http_json(server.url, "GET", BALANCE, headers={"Authorization": id_token})
    assert status == 200, body


def test_tokens_are_shaped_like_cognitos_and_their_key_is_in_the_jwks(server: DevServer) -> None:
    token = identity.mint(customer_id=CUSTOMER, admin=True)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "RS256"
    status, served = http_json(server.url, "GET", identity.JWKS_PATH)
    assert status == 200
    assert [key["kid"] for key in served["keys"]] == [header["kid"]]
    assert {key["kty"] for key in served["keys"]} == {"RSA"}
    assert claims["token_use"] == "id"
    assert claims["aud"] == identity.AUDIENCE
    assert claims["custom:customer_id"] == CUSTOMER
    assert claims["cognito:groups"] == ["admin"]
    access = jwt.decode(identity.mint(admin=True, access=True), options={"verify_signature": False})
    assert access["token_use"] == "access"
    assert access["client_id"] == identity.AUDIENCE
    assert access["scope"] == "openid email"
