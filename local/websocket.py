"""The template's WebSocket API on a laptop: `make dev` serves it with `websockets`.

What API Gateway does, in the same order: the `$connect` request goes to the REQUEST
authorizer first (its 401 or Deny refuses the handshake: the socket is never accepted),
then to the `$connect` route's function with the authorizer's context; each message goes
to `$default` (a MOCK integration: its response template is sent back and no function
runs; a function's reply body otherwise), under the stage's throttle for that route
(a token bucket shared by every connection, as API Gateway's; past it the message is
answered with a "Too Many Requests" error frame), and the close to `$disconnect`. The
Management API's `POST /@connections/{id}` is answered on the HTTP port (see `DevServer`),
so the ledger stream's boto3 `apigatewaymanagementapi` client works unchanged with
`endpoint_url`: an unknown or closed connection is a 410 `GoneException`.

API Gateway's limits are kept: 128 KB frames, 10 minutes idle, 2 hours at most (closed
with 1001 "going away", as API Gateway closes them).
"""

from __future__ import annotations

import http
import json
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from local.apigw import HttpResponse
from local.websocket_events import (
    LocalConnection,
    authorizer_context,
    authorizer_event,
    new_connection_id,
    route_event,
)
from local.websocket_template import RouteThrottle, WebSocketApiSpec

FRAME_LIMIT_BYTES = 128 * 1024
IDLE_TIMEOUT_S = 10 * 60
MAX_LIFETIME_S = 2 * 60 * 60
GOING_AWAY = 1001
MANAGEMENT_PATH = re.compile(r"^/@connections/(?P<id>[^/]+)$")

Invoke = Callable[[Any], Any]


class TokenBucket:
    """API Gateway's throttle of one route: `burst` tokens, refilled at `rate_per_s`."""

    def __init__(self, limit: RouteThrottle, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """One request's token, or False when the route is throttled right now."""
        with self._lock:
            now = self._clock()
            refill = (now - self._at) * self._limit.rate_per_s
            self._tokens = min(float(self._limit.burst), self._tokens + refill)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


# ---- the server -------------------------------------------------------------------------


class LocalWebSocketApi:
    """The WebSocket endpoint and the Management API's @connections route."""

    def __init__(
        self,
        spec: WebSocketApiSpec,
        invoke: Callable[[str, Any], Any],
        *,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_lifetime_s: float = MAX_LIFETIME_S,
    ) -> None:
        self.spec = spec
        self._invoke = invoke  # (function logical id, event) -> result
        self._buckets = {route: TokenBucket(limit) for route, limit in spec.throttles.items()}
        self.idle_timeout_s = idle_timeout_s
        self.max_lifetime_s = max_lifetime_s
        self._lock = threading.Lock()
        self._pending: dict[int, LocalConnection] = {}  # by id(ServerConnection), handshaking
        self.connections: dict[str, LocalConnection] = {}
        self._open_handlers = 0  # connection threads still running (a $disconnect, say)
        self._idle = threading.Condition(self._lock)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self.host = ""
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self, host: str, port: int) -> LocalWebSocketApi:
        self._server = serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            select_subprotocol=self._select_subprotocol,
            max_size=FRAME_LIMIT_BYTES,
            compression=None,  # API Gateway negotiates no permessage-deflate
            open_timeout=10,
        )
        self.host, self.port = self._server.socket.getsockname()[:2]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="websocket-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close every connection and wait (bounded) for their $disconnect to finish: no
        handler may run after the dev server, or DynamoDB Local, is gone."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        with self._idle:
            self._idle.wait_for(lambda: self._open_handlers == 0, timeout_s)

    # ---- the handshake: authorizer, then $connect, before anything is accepted ------

    def _route_function(self, route_key: str) -> str | None:
        return self.spec.routes.get(route_key)

    def _process_request(self, socket: ServerConnection, request: Request) -> Response | None:
        target = urlsplit(request.path)
        headers: dict[str, str] = {}
        for name, value in request.headers.raw_items():  # repeated headers joined, as HTTP does
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        peer = socket.remote_address
        connection = LocalConnection(
            connection_id=new_connection_id(),
            connected_at_ms=int(time.time() * 1000),
            headers=headers,
            query=dict(parse_qsl(target.query)),
            source_ip=str(peer[0]) if peer else "127.0.0.1",
        )
        host = headers.get("Host", self.host)
        if self.spec.authorizer is not None:
            try:
                answer = self._invoke(self.spec.authorizer, authorizer_event(connection, host))
            except Exception as error:
                if str(error) == "Unauthorized":
                    return _refuse(socket, 401, "Unauthorized")
                traceback.print_exc()
                return _refuse(socket, 500, "Internal server error")
            context = authorizer_context(answer)
            if context is None:
                return _refuse(socket, 403, "Forbidden")
            connection.authorizer = context
        function = self._route_function("$connect")
        if function is not None:
            try:
                reply = self._invoke(function, route_event(connection, "$connect", "CONNECT", host))
            except Exception:
                traceback.print_exc()
                return _refuse(socket, 502, "Internal server error")
            status = int(reply.get("statusCode", 200)) if isinstance(reply, Mapping) else 200
            if not 200 <= status < 300:
                return _refuse(socket, status, "Forbidden" if status == 403 else "Refused")
            reply_headers = (reply.get("headers") or {}) if isinstance(reply, Mapping) else {}
            connection.subprotocol = next(
                (v for k, v in reply_headers.items() if k.lower() == "sec-websocket-protocol"),
                None,
            )
        with self._lock:
            self._pending[id(socket)] = connection
        return None

    def _select_subprotocol(self, socket: ServerConnection, offered: Sequence[Any]) -> Any:
        with self._lock:
            connection = self._pending.get(id(socket))
        if connection is None or connection.subprotocol not in offered:
            return None
        return connection.subprotocol

    # ---- an open connection ------------------------------------------------------------

    def _handle(self, socket: ServerConnection) -> None:
        with self._lock:
            connection = self._pending.pop(id(socket))
            connection.socket = socket
            self.connections[connection.connection_id] = connection
            self._open_handlers += 1
        try:
            self._serve_connection(connection, socket)
        finally:
            with self._idle:
                self._open_handlers -= 1
                self._idle.notify_all()

    def _serve_connection(self, connection: LocalConnection, socket: ServerConnection) -> None:
        opened = time.monotonic()
        host = connection.headers.get("Host", self.host)
        close = (1000, "")
        try:
            while True:
                now = time.monotonic()
                idle_left = connection.last_active + self.idle_timeout_s - now
                life_left = opened + self.max_lifetime_s - now
                if min(idle_left, life_left) <= 0:
                    close = (GOING_AWAY, "Going away")
                    socket.close(GOING_AWAY, "Going away")
                    break
                try:
                    message = socket.recv(timeout=min(idle_left, life_left))
                except TimeoutError:
                    continue
                connection.last_active = time.monotonic()
                self._on_message(connection, message, host)
        except ConnectionClosed as closed:
            received = closed.rcvd
            close = (received.code, received.reason) if received else (1006, "")
        finally:
            with self._lock:
                self.connections.pop(connection.connection_id, None)
            function = self._route_function("$disconnect")
            if function is not None:
                event = route_event(connection, "$disconnect", "DISCONNECT", host, close=close)
                try:
                    self._invoke(function, event)
                except Exception:
                    traceback.print_exc()

    def _on_message(self, connection: LocalConnection, message: str | bytes, host: str) -> None:
        if connection.socket is None:
            return
        bucket = self._buckets.get("$default") or self._buckets.get("*")
        if bucket is not None and not bucket.take():
            connection.socket.send(
                json.dumps(
                    {
                        "message": "Too Many Requests",
                        "connectionId": connection.connection_id,
                        "requestId": new_connection_id(),
                    }
                )
            )
            return
        mock = self.spec.mocks.get("$default")
        if mock is not None:
            connection.socket.send(mock)  # API Gateway answers: no function runs
            return
        function = self._route_function("$default")
        if function is None:
            return
        body = message if isinstance(message, str) else message.decode("utf-8", "replace")
        event = route_event(connection, "$default", "MESSAGE", host, body=body)
        try:
            reply = self._invoke(function, event)
        except Exception:
            traceback.print_exc()
            connection.socket.send(json.dumps({"message": "Internal server error"}))
            return
        if isinstance(reply, Mapping) and isinstance(reply.get("body"), str):
            connection.socket.send(reply["body"])

    # ---- the Management API -------------------------------------------------------------

    def serve_management(self, method: str, path: str, body: bytes) -> HttpResponse | None:
        """`POST/GET/DELETE /@connections/{id}`, answered as the Management API does."""
        found = MANAGEMENT_PATH.match(path)
        if not found:
            return None
        connection_id = unquote(found["id"])
        with self._lock:
            connection = self.connections.get(connection_id)
        if connection is None or connection.socket is None:
            return _management_error(410, "GoneException", f"{connection_id} is gone")
        if method == "POST":
            if len(body) > FRAME_LIMIT_BYTES:
                return _management_error(413, "PayloadTooLargeException", "frame over 128 KB")
            try:
                try:
                    connection.socket.send(body.decode("utf-8"))
                except UnicodeDecodeError:
                    connection.socket.send(body)
            except ConnectionClosed:
                return _management_error(410, "GoneException", f"{connection_id} is gone")
            return HttpResponse(200)
        if method == "GET":
            info = {
                "ConnectedAt": _iso(connection.connected_at_ms / 1000),
                "Identity": {"SourceIp": connection.source_ip, "UserAgent": ""},
                "LastActiveAt": _iso(time.time()),
            }
            return HttpResponse(
                200, [("Content-Type", "application/json")], json.dumps(info).encode()
            )
        if method == "DELETE":
            connection.socket.close(1000, "")
            return HttpResponse(204)
        return _management_error(405, "BadRequestException", f"{method} is not supported")

    def banner_line(self) -> str:
        return (
            f"WebSocket API {self.url}/?token=<jwt>   (or subprotocols token-billing.v1, <jwt>);"
            f" $connect authorized by {self.spec.authorizer or 'nothing'};"
            f" Management API POST /@connections/<id> on the HTTP port"
        )


def _iso(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


def _refuse(socket: ServerConnection, status: int, text: str) -> Response:
    """The handshake's answer when the connection is not accepted: an HTTP status, no
    upgrade, so the client never holds an open socket."""
    print(f"WebSocket $connect refused: {status} {text}", file=sys.stderr, flush=True)
    response = socket.respond(http.HTTPStatus(status), text + "\n")
    return response


def _management_error(status: int, code: str, message: str) -> HttpResponse:
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    return HttpResponse(status, headers, json.dumps({"message": message}).encode())


def local_environment(http_url: str) -> dict[str, str]:
    """What a deployment configures for the socket's functions, pointed at this machine:
    the authorizer verifies the dev identity's tokens (local.identity) through the JWKS the
    dev server serves, and the stream function posts to the dev server's Management API."""
    from local import identity

    return {
        "JWT_ISSUER": identity.ISSUER,
        "JWT_AUDIENCE": identity.AUDIENCE,
        "JWT_JWKS_URL": f"{http_url}{identity.JWKS_PATH}",
        "JWT_ALGORITHMS": identity.ALGORITHM,
        "WEBSOCKET_MANAGEMENT_ENDPOINT": http_url,
    }
