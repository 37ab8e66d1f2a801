"""The dev server's HTTP port: which kind of request goes where (the HTTP API, the Lambda
Invoke API, the Management API's @connections, EventBridge, the local pages, the web app,
CORS preflights), read off the wire and answered on it."""

from __future__ import annotations

import re
import sys
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

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
        invoke = INVOKE_PATH.match(target.path) if self.command == "POST" else None
        local_page = None
        if not invoke and target.path.startswith(LOCAL_PAGE_PREFIXES):
            local_page = self.server.serve_local(
                self.command, target.path, list(self.headers.items()), body
            )
        amz_target = self.headers.get("X-Amz-Target", "")
        events = self.command == "POST" and amz_target.startswith("AWSEvents.")
        sockets = self.server.websocket_api
        management = sockets.serve_management(self.command, target.path, body) if sockets else None
        origin = self.headers.get("Origin")
        cross_origin = origin is not None and self.server.answers_cors(target.path)
        lowered = {name.lower(): value for name, value in self.headers.items()}
        preflight = cross_origin and self.server.cors.is_preflight(self.command, lowered)
        if preflight:
            response = self.server.cors.preflight(origin)
        elif local_page is not None:
            response = local_page
        elif management is not None:
            response = management
        elif events:
            response = self.server.serve_events(amz_target, body)
        elif invoke:
            response = self.server.serve_invoke(
                unquote(invoke["name"]),
                self.headers.get("X-Amz-Invocation-Type", "RequestResponse"),
                body,
            )
        elif (web_page := self.server.serve_web(self.command, target.path)) is not None:
            response = web_page
        else:
            response = self.server.serve_http_api(
                self.command,
                target.path,
                query=target.query,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
                protocol=self.request_version,
            )
        if cross_origin and not preflight:
            response = self.server.cors.add_headers(response, origin)
        elapsed_ms = (time.perf_counter() - started) * 1000
        # Logged before the answer goes out, so a client never sees a reply before its line.
        print(
            f"{self.command} {target.path} {response.status} {elapsed_ms:.0f} ms",
            file=sys.stderr,
            flush=True,
        )
        self._write(response)

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
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.status != 204:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: `_serve` logs one line per request with its duration instead."""
