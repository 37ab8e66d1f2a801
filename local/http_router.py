"""The dev server's HTTP port: which kind of request goes where (the HTTP API, the Lambda
Invoke API, the Management API's @connections, EventBridge, the local pages, the web app,
CORS preflights), read off the wire and answered on it."""

from __future__ import annotations

import re
import sys
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, unquote, urlsplit

from local.apigw import HttpResponse
from local.local_pages import LOCAL_PAGE_PREFIXES

if TYPE_CHECKING:
    from local.devserver import DevServer

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")


class DevRequestHandler(BaseHTTPRequestHandler):
    """Wire-level work only: read the request, hand it to the server, write the answer."""

    server: DevServer
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pool expects
    timeout = 60  # an idle keep-alive connection frees its thread after this long

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _serve(self) -> None:
        started = time.perf_counter()
        target = urlsplit(self.path)
        body = self._read_body()
        origin = self.headers.get("Origin")
        cross_origin = origin is not None and self.server.answers_cors(target.path)
        lowered = {name.lower(): value for name, value in self.headers.items()}
        if cross_origin and self.server.cors.is_preflight(self.command, lowered):
            response = self.server.cors.preflight(origin)
        else:
            response = self._route(target, body)
            if cross_origin:
                response = self.server.cors.add_headers(response, origin)
        elapsed_ms = (time.perf_counter() - started) * 1000
        # Logged before the answer goes out, so a client never sees a reply before its line.
        print(
            f"{self.command} {target.path} {response.status} {elapsed_ms:.0f} ms",
            file=sys.stderr,
            flush=True,
        )
        self._write(response)

    def _route(self, target: SplitResult, body: bytes) -> HttpResponse:
        """The answer of the part the request belongs to, the parts asked in this order:
        local pages, Management API, EventBridge, Invoke API, web app, else the HTTP API."""
        method, path, server = self.command, target.path, self.server
        invoke = INVOKE_PATH.match(path) if method == "POST" else None
        if not invoke and path.startswith(LOCAL_PAGE_PREFIXES):
            # The fake Stripe reads a GET's parameters from its query string, as Stripe does.
            asked = (
                f"{path}?{target.query}" if path.startswith("/_stripe/") and target.query else path
            )
            page = server.serve_local(method, asked, list(self.headers.items()), body)
            if page is not None:
                return page
        if server.websocket_api is not None:
            management = server.websocket_api.serve_management(method, path, body)
            if management is not None:
                return management
        amz_target = self.headers.get("X-Amz-Target", "")
        if method == "POST" and amz_target.startswith("AWSEvents."):
            return server.serve_events(amz_target, body)
        if invoke:
            invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
            return server.serve_invoke(unquote(invoke["name"]), invocation_type, body)
        web_page = server.serve_web(method, path)
        if web_page is not None:
            return web_page
        return server.http_api.serve(
            method,
            path,
            query=target.query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )

    def _read_body(self) -> bytes:
        """The request body, whether sent with Content-Length or chunked."""
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";", 1)[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF that ends each chunk
        while self.rfile.readline().strip():  # trailers, up to the blank line
            pass
        return b"".join(chunks)

    def _write(self, response: HttpResponse) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            if response.status != 204:
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client left before its answer (a page navigated away, a probe timed out):
            # one line, not a traceback; what the request did is already done and logged.
            self.close_connection = True
            print(f"{self.command} {self.path}: the client left before the answer", file=sys.stderr)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: `_serve` logs one line per request with its duration instead."""
