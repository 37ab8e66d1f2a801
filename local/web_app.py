"""The demo web app on the dev server: the static files `make web` bundles into
web/demo-dist, index.html for the app's own routes, and its config.json pointed at this
server's WebSocket API."""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from urllib.parse import unquote

from local.apigw import HttpResponse

# Paths the web app's SPA fallback never answers: the dev server's own and the Invoke API.
NOT_WEB_PATHS = ("/_local/", "/_stripe/", "/2015-03-31/", "/openapi.json")


def serve_web_app(
    web_root: Path | None,
    method: str,
    path: str,
    *,
    api_prefixes: tuple[str, ...],
    socket_url: str | None,
) -> HttpResponse | None:
    """The web app's static files from `web_root`, with index.html for the app's own
    routes (/dashboard, /checkout/success, ...); None for API (`api_prefixes`) and dev
    server paths, or when the app is not built. `socket_url`: the WebSocket API, if served."""
    if method not in ("GET", "HEAD") or web_root is None:
        return None
    if (path + "/").startswith((*NOT_WEB_PATHS, *api_prefixes)):
        return None
    root = web_root.resolve()
    index = root / "index.html"
    if not index.is_file():
        return None
    try:
        file = (root / unquote(path).lstrip("/")).resolve()
    except (OSError, ValueError):  # e.g. an encoded NUL byte
        return None
    if not file.is_relative_to(root):
        return None
    if file.is_dir():
        file = file / "index.html"
    if not file.is_file():
        if "." in path.rsplit("/", 1)[-1]:  # a missing asset, not an app route
            return None
        file = index
    content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type == "application/javascript":
        content_type += "; charset=utf-8"
    headers = [("Content-Type", content_type), ("Cache-Control", "no-cache")]
    content = file.read_bytes()
    if file.name == "config.json" and socket_url is not None:
        content = with_socket_url(content, socket_url)
    return HttpResponse(200, headers, content)


def with_socket_url(config: bytes, socket_url: str) -> bytes:
    """The web app's config.json with this server's socket URL where it names none
    (`"socketUrl": ""`), as `"apiBaseUrl": ""` means this server's own origin."""
    try:
        parsed = json.loads(config)
    except ValueError:
        return config
    if not isinstance(parsed, dict) or parsed.get("socketUrl") != "":
        return config
    return json.dumps({**parsed, "socketUrl": socket_url}, indent=2).encode()
