"""The web app as the stack hosts it (DeployWebApp=true), on this machine: web/demo-dist on
an origin of its own, every response with the headers of the template's CloudFront policy
(`local.web_headers`), a config.json as `make publish-web` writes one (the API's and the
socket's URLs; the dev identity's sign-in instead of Cognito's), and index.html for the
app's own routes, as the distribution's 403/404 error responses serve it.

The browser e2e (web/e2e/hosted-app.e2e.ts) runs the app here against a dev server:

    .venv/bin/python -m local.hosted_web_app --port 3100 \\
        --api-url http://127.0.0.1:3000 --socket-url ws://127.0.0.1:3030

The dev server must allow this origin (`--cors-origins http://127.0.0.1:3100`), as the
stack's HTTP API allows the CloudFront origin.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import sys
from collections.abc import Sequence
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from local.environment import DEFAULT_HOST, WEB_ROOT
from local.local_pages import SIGN_IN_PATH
from local.template import load_template
from local.web_headers import hosted_app_headers


def config_json(api_url: str, socket_url: str) -> bytes:
    """The app's config.json: publish-web's endpoints, the dev identity's sign-in."""
    config = {
        "apiBaseUrl": api_url,
        "socketUrl": socket_url,
        "identity": {"provider": "local", "tokenEndpoint": SIGN_IN_PATH},
    }
    return json.dumps(config, indent=2).encode()


class HostedAppHandler(BaseHTTPRequestHandler):
    """GET and HEAD of the built app's files, each answer with the policy's headers."""

    def __init__(
        self, *args: object, root: Path, headers: list[tuple[str, str]], config: bytes
    ) -> None:
        self.root, self.policy_headers, self.config = root.resolve(), headers, config
        super().__init__(*args)  # type: ignore[arg-type]

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if path == "/config.json":
            body, content_type = self.config, "application/json"
        else:
            file = (self.root / path.lstrip("/")).resolve()
            if not file.is_relative_to(self.root) or not file.is_file():
                file = self.root / "index.html"  # S3's 403/404 -> /index.html with 200
            body = file.read_bytes()
            content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in self.policy_headers:
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the e2e's own log says what it asked for


def build_hosted_app(
    host: str, port: int, *, api_url: str, socket_url: str, root: Path = WEB_ROOT
) -> ThreadingHTTPServer:
    """The hosted app's server bound to (host, port), not yet serving."""
    if not (root / "index.html").is_file():
        raise FileNotFoundError(f"{root} has no index.html: run `make web`")
    handler = partial(
        HostedAppHandler,
        root=root,
        headers=hosted_app_headers(load_template(), api_url, socket_url),
        config=config_json(api_url, socket_url),
    )
    return ThreadingHTTPServer((host, port), handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.hosted_web_app", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--api-url", required=True, help="the dev server, as config.json's apiBaseUrl"
    )
    parser.add_argument("--socket-url", required=True, help="its WebSocket API (socketUrl)")
    args = parser.parse_args(argv)
    server = build_hosted_app(
        args.host, args.port, api_url=args.api_url, socket_url=args.socket_url
    )
    host, port = server.server_address[:2]
    print(f"Hosted web app http://{host!s}:{port}/ under the template's headers", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
