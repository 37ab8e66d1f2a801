"""The hosted web app's headers as CloudFront sends them, filled in for this machine, and
the local server that serves the app under them (web/e2e/hosted-app.e2e.ts drives it)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.hosted_web_app import build_hosted_app
from local.template import TEMPLATE_PATH, load_template
from local.web_headers import hosted_app_headers, localized_csp, source_allows

API, SOCKET = "http://127.0.0.1:3000", "ws://127.0.0.1:3030"
DEPLOYED_API = "https://a1b2c3.execute-api.us-east-1.amazonaws.com"
DEPLOYED_SOCKET = "wss://w9x8y7.execute-api.us-east-1.amazonaws.com/dev"


def directives(csp: str) -> dict[str, list[str]]:
    return {name: sources for name, *sources in (d.split() for d in csp.split(";") if d.strip())}


@pytest.mark.parametrize(
    ("source", "url", "allowed"),
    [
        ("https://*.execute-api.us-east-1.amazonaws.com", DEPLOYED_API, True),
        # The finding: an https: source does not cover the socket's wss: (CSP3 schemes).
        ("https://*.execute-api.us-east-1.amazonaws.com", DEPLOYED_SOCKET, False),
        ("https:", DEPLOYED_SOCKET, False),
        ("wss://w9x8y7.execute-api.us-east-1.amazonaws.com", DEPLOYED_SOCKET, True),
        ("wss://w9x8y7.execute-api.us-east-1.amazonaws.com", DEPLOYED_API, False),
        ("wss:", DEPLOYED_SOCKET, True),
        ("ws:", DEPLOYED_SOCKET, True),
        ("*.amazonaws.com", DEPLOYED_API, True),  # no scheme: the app's own (https)
        ("*.amazonaws.com", DEPLOYED_SOCKET, False),
        ("https://*.execute-api.eu-west-1.amazonaws.com", DEPLOYED_API, False),
        ("https://a1b2c3.execute-api.us-east-1.amazonaws.com:8443", DEPLOYED_API, False),
        ("https://a1b2c3.execute-api.us-east-1.amazonaws.com:*", DEPLOYED_API, True),
        ("'self'", DEPLOYED_API, False),
        ("'none'", DEPLOYED_API, False),
    ],
)
def test_csp_source_matching_follows_csp3(source: str, url: str, allowed: bool) -> None:
    assert source_allows(source, url) is allowed


def test_the_templates_policy_lets_the_app_reach_the_local_api_and_socket() -> None:
    headers = dict(hosted_app_headers(load_template(), API, SOCKET))
    csp = directives(headers["Content-Security-Policy"])
    assert csp["connect-src"] == ["'self'", API, SOCKET]
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_the_policy_before_issue_22_would_block_the_socket_here_too(tmp_path: Path) -> None:
    """connect-src named only https://*.execute-api...: no local socket origin is filled in,
    so the browser refuses the socket as it did in AWS."""
    text = TEMPLATE_PATH.read_text()
    socket_line = next(line for line in text.splitlines() if " wss://${WebSocketApi}" in line)
    copy = tmp_path / "template.yaml"
    copy.write_text(text.replace(socket_line + "\n", ""))
    headers = dict(hosted_app_headers(load_template(copy), API, SOCKET))
    assert directives(headers["Content-Security-Policy"])["connect-src"] == ["'self'", API]


def test_without_connect_src_default_src_is_filled_in() -> None:
    endpoints = {DEPLOYED_API: API}
    assert localized_csp("default-src 'self' https:; img-src 'self'", endpoints) == (
        f"default-src 'self' {API}; img-src 'self'"
    )


@pytest.fixture
def hosted(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "index.html").write_text("<!doctype html><title>app</title>")
    (tmp_path / "app.js").write_text("console.log(1)")
    server = build_hosted_app("127.0.0.1", 0, api_url=API, socket_url=SOCKET, root=tmp_path)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_every_answer_carries_the_headers_and_app_routes_get_index_html(hosted: str) -> None:
    expected = dict(hosted_app_headers(load_template(), API, SOCKET))
    for path, body in (("/", b"<!doctype"), ("/dashboard", b"<!doctype"), ("/app.js", b"console")):
        with urllib.request.urlopen(hosted + path, timeout=5) as reply:  # noqa: S310
            assert reply.status == 200
            assert reply.read().startswith(body), path
            for name, value in expected.items():
                assert reply.headers[name] == value, (path, name)
    with urllib.request.urlopen(hosted + "/config.json", timeout=5) as reply:  # noqa: S310
        assert json.load(reply) == {
            "apiBaseUrl": API,
            "socketUrl": SOCKET,
            "identity": {"provider": "local", "tokenEndpoint": "/_local/identity/token"},
        }
