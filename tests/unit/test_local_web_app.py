"""The dev server serves the built web app: its files, index.html for the app's routes, and
nothing that belongs to the API, the Invoke API or the dev server's own pages."""

import json
from pathlib import Path

import pytest

from local.web_app import serve_web_app

API_PREFIXES = ("/api/", "/webhooks/")
SOCKET_URL = "ws://127.0.0.1:3030"


@pytest.fixture
def web_root(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text("<!doctype html><title>app</title>")
    (tmp_path / "app.js").write_text("console.log(1)")
    (tmp_path / "config.json").write_text(json.dumps({"apiBaseUrl": "", "socketUrl": ""}))
    return tmp_path


def serve(web_root: Path | None, path: str, method: str = "GET") -> tuple[int, str, bytes] | None:
    reply = serve_web_app(web_root, method, path, api_prefixes=API_PREFIXES, socket_url=SOCKET_URL)
    if reply is None:
        return None
    return reply.status, dict(reply.headers)["Content-Type"], reply.body


def test_files_and_the_app_routes_are_served(web_root: Path) -> None:
    assert serve(web_root, "/app.js") == (
        200,
        "text/javascript; charset=utf-8",
        b"console.log(1)",
    )
    index = (web_root / "index.html").read_bytes()
    assert serve(web_root, "/") == (200, "text/html; charset=utf-8", index)
    assert serve(web_root, "/dashboard") == (200, "text/html; charset=utf-8", index)
    head = serve(web_root, "/dashboard", method="HEAD")
    assert head is not None
    assert head[0] == 200


def test_config_json_names_the_socket_only_where_it_names_none(web_root: Path) -> None:
    served = serve(web_root, "/config.json")
    assert served is not None
    assert json.loads(served[2]) == {"apiBaseUrl": "", "socketUrl": SOCKET_URL}
    (web_root / "config.json").write_text(json.dumps({"socketUrl": "wss://elsewhere"}))
    served = serve(web_root, "/config.json")
    assert served is not None
    assert json.loads(served[2]) == {"socketUrl": "wss://elsewhere"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/token-packages",  # the HTTP API's
        "/webhooks/stripe",
        "/_local/checkout/cs_1",  # the dev server's own pages
        "/_stripe/v1/customers",
        "/2015-03-31/functions/DebitFunction/invocations",  # the Invoke API
        "/openapi.json",
        "/missing.js",  # a missing asset is a 404, not the app
        "/..%2F..%2Fetc%2Fpasswd",  # outside the web root
        "/%00",
    ],
)
def test_what_is_not_the_web_app_is_left_to_the_router(web_root: Path, path: str) -> None:
    assert serve(web_root, path) is None


def test_nothing_is_served_by_post_or_when_the_app_is_not_built(
    web_root: Path, tmp_path: Path
) -> None:
    assert serve(web_root, "/", method="POST") is None
    assert serve(None, "/") is None
    assert serve(tmp_path / "not-built", "/") is None
