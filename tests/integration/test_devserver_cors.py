"""The dev server's CORS, as the HTTP API's CorsConfiguration answers it: preflights from
the local web apps' origins, the allow-origin header on their replies, nothing for other
origins, and Checkout returning to those origins. Over real HTTP, on DynamoDB Local."""

from __future__ import annotations

import http.client
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from local import cors, identity
from local.cli import parse_args
from local.devserver import DevServer, build_server
from local.environment import function_environment
from local.template import load_template
from tests.integration.helpers import http_json
from token_billing import runtime

pytestmark = pytest.mark.integration

APP_ORIGIN = "http://127.0.0.1:3999"  # a web app on another port, told to the server
OTHER_ORIGIN = "http://127.0.0.1:4999"  # a page the server was not told about
PURCHASE = "/api/v1/customers/{}/tokens/purchase"
HTTP_TIMEOUT_S = 10


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    server = build_server("127.0.0.1", 0, cors_origins=(APP_ORIGIN,))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def send(
    server: DevServer, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased names) and body of one raw request."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=HTTP_TIMEOUT_S)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        connection.close()


def preflight(
    server: DevServer, path: str, origin: str, method: str = "POST"
) -> tuple[int, dict[str, str], bytes]:
    return send(
        server,
        "OPTIONS",
        path,
        {
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
        },
    )


def template_cors() -> dict[str, Any]:
    api = load_template().raw["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    configuration: dict[str, Any] = api["Fn::If"][1]
    return configuration


# ---- preflights ------------------------------------------------------------------------


def test_a_preflight_from_an_allowed_origin_gets_the_templates_rules(server: DevServer) -> None:
    status, headers, body = preflight(server, PURCHASE.format("cust_cors"), APP_ORIGIN)

    configuration = template_cors()
    assert (status, body) == (204, b"")
    assert headers["access-control-allow-origin"] == APP_ORIGIN
    assert headers["access-control-allow-methods"] == ",".join(configuration["AllowMethods"])
    assert headers["access-control-allow-headers"] == ",".join(configuration["AllowHeaders"])
    assert headers["access-control-max-age"] == str(configuration["MaxAge"]) == "600"
    assert headers["vary"] == "Origin"


def test_a_preflight_for_the_auto_top_up_put_allows_put(server: DevServer) -> None:
    # The settings' PUT from another origin: refused by the browser while AllowMethods
    # listed only GET and POST.
    status, headers, _ = preflight(
        server, "/api/v1/customers/cust_cors/tokens/auto-top-up", APP_ORIGIN, "PUT"
    )

    assert status == 204
    assert "PUT" in headers["access-control-allow-methods"].split(",")


def test_a_preflight_needs_no_token_as_api_gateway_answers_it_before_the_authorizer(
    server: DevServer,
) -> None:
    status, headers, _ = preflight(
        server, "/api/v1/customers/cust_cors/dashboard", APP_ORIGIN, "GET"
    )

    assert status == 204
    assert headers["access-control-allow-origin"] == APP_ORIGIN


def test_a_preflight_from_another_origin_gets_no_cors_headers(server: DevServer) -> None:
    status, headers, _ = preflight(server, PURCHASE.format("cust_cors"), OTHER_ORIGIN)

    assert status == 204
    assert not [name for name in headers if name.startswith("access-control-")]


def test_options_without_a_requested_method_is_no_preflight(server: DevServer) -> None:
    status, headers, _ = send(server, "OPTIONS", "/api/v1/token-packages", {"Origin": APP_ORIGIN})

    assert status == 404  # no OPTIONS route: the API's own 404, with the origin allowed
    assert headers["access-control-allow-origin"] == APP_ORIGIN


# ---- replies ---------------------------------------------------------------------------


def test_a_reply_to_an_allowed_origin_allows_it_and_exposes_the_cursor(server: DevServer) -> None:
    status, headers, _ = send(server, "GET", "/api/v1/token-packages", {"Origin": APP_ORIGIN})

    assert status == 200
    assert headers["access-control-allow-origin"] == APP_ORIGIN
    assert headers["access-control-expose-headers"] == "x-next-cursor"
    assert "access-control-allow-credentials" not in headers


def test_an_unauthorized_reply_still_reaches_the_allowed_page(server: DevServer) -> None:
    status, headers, body = send(
        server, "GET", "/api/v1/customers/cust_cors/tokens", {"Origin": APP_ORIGIN}
    )

    assert (status, body) == (401, b'{"message":"Unauthorized"}')
    assert headers["access-control-allow-origin"] == APP_ORIGIN


def test_a_reply_to_another_origin_allows_nothing(server: DevServer) -> None:
    status, headers, _ = send(server, "GET", "/api/v1/token-packages", {"Origin": OTHER_ORIGIN})

    assert status == 200
    assert "access-control-allow-origin" not in headers


def test_the_development_sign_in_answers_the_allowed_origin(server: DevServer) -> None:
    status, headers, _ = preflight(server, "/_local/identity/token", APP_ORIGIN)
    assert (status, headers["access-control-allow-origin"]) == (204, APP_ORIGIN)

    status, headers, _ = send(
        server,
        "POST",
        "/_local/identity/token",
        {"Origin": APP_ORIGIN, "Content-Type": "application/json"},
        b'{"customer_id": "cust_cors"}',
    )
    assert (status, headers["access-control-allow-origin"]) == (200, APP_ORIGIN)


def test_the_invoke_api_is_not_for_browsers(server: DevServer) -> None:
    status, headers, _ = preflight(
        server, "/2015-03-31/functions/DebitFunction/invocations", APP_ORIGIN
    )

    assert status != 204
    assert "access-control-allow-origin" not in headers


def test_the_default_server_allows_local_web_app_ports(dev_server: DevServer) -> None:
    for origin in ("http://localhost:3001", "http://127.0.0.1:5173", "http://localhost:3000"):
        _, headers, _ = send(dev_server, "GET", "/api/v1/token-packages", {"Origin": origin})
        assert headers.get("access-control-allow-origin") == origin, origin
    _, headers, _ = send(
        dev_server, "GET", "/api/v1/token-packages", {"Origin": "http://192.0.2.1:3000"}
    )
    assert "access-control-allow-origin" not in headers


# ---- Checkout returns to the allowed origins ------------------------------------------


@pytest.fixture
def dev_server_environment(server: DevServer, local_aws: None) -> None:
    """The functions' environment as `make dev` sets it (offline Stripe on this server)."""
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        os.environ.pop(name, None)
    os.environ.update(function_environment(server.url, server.cors.allow_origins))
    runtime.reset()


@pytest.mark.usefixtures("dev_server_environment")
def test_checkout_may_return_to_an_allowed_origin_and_to_no_other(server: DevServer) -> None:
    customer_id = "cust_cors_checkout"
    token = identity.mint(customer_id=customer_id)

    def buy(origin: str) -> tuple[int, dict[str, Any]]:
        body = {
            "package_id": "growth",
            "success_url": f"{origin}/checkout/success",
            "cancel_url": f"{origin}/checkout/cancel",
        }
        return http_json(
            server.url,
            "POST",
            PURCHASE.format(customer_id),
            body,
            token=token,
            headers={"Origin": origin},
        )

    status, reply = buy(APP_ORIGIN)
    assert status == 200, reply
    assert str(reply["checkout_url"]).startswith(f"{server.url}/_local/checkout/")

    status, reply = buy(OTHER_ORIGIN)
    assert status == 400
    assert reply["error"]["code"] == "invalid_request"


def test_the_environment_lists_the_servers_own_origin_and_the_allowed_ones() -> None:
    environment = function_environment("http://127.0.0.1:3000", ("http://localhost:3001",))

    assert environment["CHECKOUT_REDIRECT_ORIGINS"] == "http://127.0.0.1:3000,http://localhost:3001"


# ---- configuration ---------------------------------------------------------------------


def test_origins_come_from_the_flag_then_the_environment_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(cors.ORIGINS_ENV, raising=False)
    assert parse_args([]).cors_origins == cors.DEFAULT_ORIGINS
    assert "http://localhost:3001" in cors.DEFAULT_ORIGINS

    monkeypatch.setenv(cors.ORIGINS_ENV, "http://localhost:8080, https://app.test/")
    assert parse_args([]).cors_origins == ("http://localhost:8080", "https://app.test")
    flag = parse_args(["--cors-origins", "http://127.0.0.1:4000"]).cors_origins
    assert flag == ("http://127.0.0.1:4000",)


@pytest.mark.parametrize(
    "value",
    ["http://localhost:3000/app", "*", "http://*", "ftp://localhost:21", "localhost:3000"],
)
def test_anything_but_a_bare_origin_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not an origin"):
        cors.parse_origins(value)
    with pytest.raises(SystemExit):
        parse_args(["--cors-origins", value])


def test_an_empty_list_allows_no_origin() -> None:
    assert cors.parse_origins(" , ") == ()
    assert not cors.rules_for(()).allows(APP_ORIGIN)
