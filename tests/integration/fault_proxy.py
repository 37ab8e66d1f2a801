"""A small fault-injecting HTTP proxy between the handlers' DynamoDB client and DynamoDB
Local. Each request is forwarded unless a scripted fault for its operation is pending:

- `lost`: forward it (the write commits), then drop the connection without an answer:
  the ambiguous case, where the caller cannot know whether its write landed;
- `throttle`: answer 400 ThrottlingException without forwarding (nothing happens);
- `5xx`: answer 500 InternalServerError without forwarding;
- `conflict`: answer a TransactWriteItems with TransactionCanceledException whose first
  reason is `TransactionConflict`, without forwarding (DynamoDB Local never returns one).
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

THROTTLE = {
    "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
    "message": "Rate exceeded",
}
INTERNAL = {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "boom"}
FAULTS = frozenset({"lost", "throttle", "5xx", "conflict"})


def conflict(request_body: bytes) -> dict[str, object]:
    """A transaction cancelled by a conflicting one: a reason per item, as DynamoDB sends."""
    items = json.loads(request_body or b"{}").get("TransactItems") or [{}]
    reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing"}]
    reasons += [{"Code": "None"}] * (len(items) - 1)
    return {
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
        "CancellationReasons": reasons,
    }


class FaultProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults: dict[str, deque[str]] = {}
        self.always: dict[str, str] = {}
        self.seen: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def inject(self, operation: str, *faults: str) -> None:
        assert set(faults) <= FAULTS, faults
        with self.lock:
            self.faults.setdefault(operation, deque()).extend(faults)

    def inject_always(self, operation: str, fault: str) -> None:
        with self.lock:
            self.always[operation] = fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.always.clear()

    def next_fault(self, operation: str) -> str | None:
        with self.lock:
            self.seen[operation] += 1
            queue = self.faults.get(operation)
            fault = queue.popleft() if queue else self.always.get(operation)
            if fault:
                self.injected[f"{operation}:{fault}"] += 1
            return fault


class _Handler(BaseHTTPRequestHandler):
    server: FaultProxy
    protocol_version = "HTTP/1.1"
    _upstream: http.client.HTTPConnection | None = None
    # Headers and body go out as two writes: with Nagle's algorithm on, the client's delayed
    # ACK holds the body back ~40 ms per request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        operation = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        fault = self.server.next_fault(operation)
        if fault in ("throttle", "5xx", "conflict"):
            status, payload = {
                "throttle": (400, THROTTLE),
                "5xx": (500, INTERNAL),
                "conflict": (400, conflict(body)),
            }[fault]
            self._answer(status, json.dumps(payload).encode())
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        answer, status = self._forward(body, headers)
        if fault == "lost":
            self.close_connection = True  # committed upstream; the caller never hears of it
            self.connection.shutdown(2)
            return
        self._answer(status, answer)

    def _forward(self, body: bytes, headers: dict[str, str]) -> tuple[bytes, int]:
        """The request sent on upstream, over one kept-alive connection per client
        connection (a new TCP connection per request would cost more than the request).
        A kept connection the server closed while idle is opened again once: a request
        refused that way never reached DynamoDB Local."""
        for reused in (self._upstream is not None, False):
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(*self.server.upstream, timeout=30)
            try:
                self._upstream.request("POST", self.path, body=body, headers=headers)
                response = self._upstream.getresponse()
                return response.read(), response.status
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                self._upstream.close()
                self._upstream = None
                if not reused:
                    raise
        raise AssertionError("unreachable: the second try either answers or raises")

    def finish(self) -> None:
        super().finish()
        if self._upstream is not None:
            self._upstream.close()

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def running(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream)
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)
