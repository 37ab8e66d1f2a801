"""`make dev`: the template's HTTP API and the Lambda Invoke API on one port, over DynamoDB
Local, with the unchanged handlers running in this process.

It stands in for `sam local start-api` plus `sam local start-lambda` without Docker: routes,
handlers and environment all come from template.yaml, requests become real payload format
2.0 events, and the Invoke API answers like Lambda's, so boto3 clients work unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import ipaddress
import json
import logging
import mimetypes
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

from local import cors, dynamodb_local, identity, offline_checkout
from local.apigw import (
    INTERNAL_SERVER_ERROR,
    LOCAL_ACCOUNT_ID,
    NOT_FOUND,
    HttpResponse,
    http_api_event,
    http_api_response,
)
from local.ddb_streams import POLL_INTERVAL_S, StreamPoller
from local.fake_events import FakeEventBridge
from local.fake_stripe import (
    LOCAL_SECRET_KEY,
    LOCAL_WEBHOOK_SECRET,
    TEST_CARDS,
    FakeStripe,
    event_payload,
    sign,
)
from local.schedules import ScheduleRunner, schedules
from local.template import ROOT, FunctionSpec, HttpRoute, load_template
from local.websocket import LocalWebSocketApi, websocket_api, with_socket_url
from local.websocket import local_environment as local_websocket_environment
from token_billing.domain.agent_credentials import CREDENTIAL_TTL_DEFAULT_S
from tools import agent_credential

SHARED_LAYER = ROOT / "layers" / "shared"
DATA_DIR = ROOT / ".dynamodb" / "data"
WEB_ROOT = ROOT / "web" / "demo-dist"  # the demo web app, built by `make web`
EVENTS_LOG = ROOT / ".local" / "events.jsonl"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
DEFAULT_DDB_PORT = 8000
DEFAULT_WS_PORT = 3030  # the WebSocket API (local/websocket.py), on the same host; 3001 is
# where `next dev` goes when the dev server holds 3000 (local/cors.py)
CHECKOUT_PAGE = re.compile(r"^/_local/checkout/(?P<id>[\w-]+)(?:/(?P<action>pay|cancel))?$")
UNAUTHORIZED = HttpResponse(
    401, [("Content-Type", "application/json")], b'{"message":"Unauthorized"}'
)
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
SIGN_IN_PATH = "/_local/identity/token"
AGENT_CREDENTIAL_PATH = "/_local/agent-credential"
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Paths the web app's SPA fallback never answers: the dev server's own and the Invoke API.
NOT_WEB_PATHS = ("/_local/", "/_stripe/", "/2015-03-31/", "/openapi.json")
EXAMPLE_VM = "vm-1"
EXAMPLE_DEBIT = {
    "customer_id": "cust_demo",
    "idempotency_key": "k1",
    "usage": [{"action": "api_call", "quantity": 3, "vm_id": EXAMPLE_VM}],
}
JSON_HEADERS = [("Content-Type", "application/json")]

Handler = Callable[[Any, Any], Any]


def ensure_on_path(folder: Path) -> None:
    """Make a code folder importable, as Lambda does for /var/task and /opt/python."""
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def port_in_use(port: int) -> bool:
    """Whether something already listens on loopback `port`."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


@dataclass
class LambdaContext:
    """The context object the Lambda Python runtime passes to a handler."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    log_group_name: str
    log_stream_name: str
    deadline: float  # time.monotonic() when Lambda would stop the invocation
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_context: None = None
    identity: None = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


# The service of the function this thread is running. A filter rather than Powertools'
# thread-safe keys: `inject_lambda_context(clear_state=True)` clears those on every call.
_INVOKED_SERVICE: ContextVar[str | None] = ContextVar("invoked_service", default=None)


class _InvokedServiceName(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        service = _INVOKED_SERVICE.get()
        if service is not None:
            record.service = service  # a record attribute overrides the formatter's key
        return True


_service_filter_lock = threading.Lock()
_service_filter_installed = False


def _install_service_filter() -> None:
    """Once, on the first handler import: importing the functions' observability module
    creates their Logger and Metrics, which read the environment the dev server sets up
    (the metric namespace, ...) before it imports any handler."""
    global _service_filter_installed
    with _service_filter_lock:
        if _service_filter_installed:
            return
        from token_billing.core.observability import logger

        logging.getLogger(logger.name).addFilter(_InvokedServiceName())
        _service_filter_installed = True


class LocalFunction:
    """One template function, imported on its first invocation as a Lambda cold start does."""

    def __init__(self, spec: FunctionSpec, *, timeout_s: int, memory_mb: int) -> None:
        self.spec = spec
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        region = dynamodb_local.LOCAL_REGION
        self.arn = f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{spec.logical_id}"
        # One "execution environment": its log stream is named once, like Lambda's.
        self.log_stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._handler: Handler | None = None
        self._lock = threading.Lock()

    def handler(self) -> Handler:
        """The handler function, imported once; concurrent first calls wait for one import."""
        with self._lock:
            if self._handler is None:
                _install_service_filter()
                ensure_on_path(self.spec.code_uri)
                module = importlib.import_module(self.spec.module_name)
                source = Path(module.__file__ or "").resolve()
                if not source.is_relative_to(self.spec.code_uri.resolve()):
                    raise ImportError(
                        f"{self.spec.module_name} was imported from {source}, not from "
                        f"{self.spec.code_uri}: handler module names must be unique"
                    )
                self._handler = getattr(module, self.spec.function_name)
            return self._handler

    @property
    def service(self) -> str:
        return self.spec.environment.get("POWERTOOLS_SERVICE_NAME", self.spec.logical_id)

    def invoke(self, event: Any) -> Any:
        """Run the handler on `event`; its exceptions propagate to the caller."""
        handler = self.handler()
        # All functions share one process here, and so one Powertools Logger: this thread's
        # records carry this function's service name, as its own process would on AWS.
        service_token = _INVOKED_SERVICE.set(self.service)
        started = time.monotonic()
        context = LambdaContext(
            function_name=self.spec.logical_id,
            invoked_function_arn=self.arn,
            memory_limit_in_mb=self.memory_mb,
            log_group_name=f"/aws/lambda/{self.spec.logical_id}",
            log_stream_name=self.log_stream,
            deadline=started + self.timeout_s,
        )
        try:
            return handler(event, context)
        finally:
            _INVOKED_SERVICE.reset(service_token)
            elapsed = time.monotonic() - started
            if elapsed > self.timeout_s:
                print(
                    f"WARNING {self.spec.logical_id} ran {elapsed:.1f} s, past its "
                    f"{self.timeout_s} s timeout: Lambda would have stopped it",
                    file=sys.stderr,
                )


def api_error(status: int, code: str, message: str) -> HttpResponse:
    """The API's one error shape, for the dev server's own endpoints."""
    body = {"error": {"code": code, "message": message, "retryable": False}}
    return HttpResponse(status, JSON_HEADERS, json.dumps(body).encode())


def is_loopback(host: str) -> bool:
    """Whether `host` (an address the server binds) only accepts this machine's clients."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lambda_error(status: int, error_type: str, message: str) -> HttpResponse:
    """An error of the Lambda service itself, shaped so botocore raises `error_type`."""
    body = json.dumps({"Type": "User", "message": message}).encode()
    return HttpResponse(status, [*JSON_HEADERS, ("x-amzn-ErrorType", error_type)], body)


def function_error(error_type: str, message: str, stack: list[str]) -> HttpResponse:
    """A handler failure as Lambda reports it: status 200, flagged by X-Amz-Function-Error."""
    body = json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": stack})
    headers = [
        *JSON_HEADERS,
        ("X-Amz-Function-Error", "Unhandled"),
        ("X-Amz-Executed-Version", "$LATEST"),
    ]
    return HttpResponse(200, headers, body.encode())


def function_name_of(name: str) -> str:
    """The function named by an Invoke API path: `Name`, `Name:qualifier` or an ARN."""
    if name.startswith("arn:"):
        parts = name.split(":")
        return parts[6] if len(parts) > 6 else ""
    return name.split(":", 1)[0]


def _function_setting(logical_id: str, name: str, default: int) -> int:
    """A function property (Timeout, MemorySize) from its resource, else from Globals."""
    raw = load_template().raw
    global_value = raw.get("Globals", {}).get("Function", {}).get(name, default)
    return int(raw["Resources"][logical_id]["Properties"].get(name, global_value))


class DevServer(ThreadingHTTPServer):
    """The HTTP server plus what it serves: the template's functions and HTTP routes."""

    # A second server on the same port must fail to bind, not share the port's traffic.
    allow_reuse_port = False

    def __init__(
        self,
        address: tuple[str, int],
        web_root: Path | None = WEB_ROOT,
        cors_origins: tuple[str, ...] = cors.DEFAULT_ORIGINS,
    ) -> None:
        template = load_template()
        self.functions = {
            logical_id: LocalFunction(
                spec,
                timeout_s=_function_setting(logical_id, "Timeout", 3),
                memory_mb=_function_setting(logical_id, "MemorySize", 128),
            )
            for logical_id, spec in template.functions().items()
        }
        self.routes: list[HttpRoute] = template.http_routes()
        # First path segments of the API's routes ("/api/", "/webhooks/"): never web pages.
        self.api_prefixes = tuple(
            sorted({"/" + route.path.strip("/").split("/", 1)[0] + "/" for route in self.routes})
        )
        self.web_root = web_root
        self.cors = cors.rules_for(cors_origins)
        super().__init__(address, DevRequestHandler)
        self.fake_stripe = FakeStripe(public_base=self.url)
        self.fake_stripe.webhook_sink = self.deliver_stripe_event  # auto top-up's events
        self.fake_events = FakeEventBridge(EVENTS_LOG)
        self.stream_pollers: list[StreamPoller] = []
        self.schedule_runners: list[ScheduleRunner] = []
        spec = websocket_api(template)
        self.websocket_api: LocalWebSocketApi | None = None
        if spec is not None:
            self.websocket_api = LocalWebSocketApi(
                spec, lambda function, event: self.functions[function].invoke(event)
            )

    def start_websocket_api(self, port: int = 0) -> LocalWebSocketApi | None:
        """Serve the template's WebSocket API on this server's host (port 0: a free one)."""
        if self.websocket_api is not None:
            self.websocket_api.start(str(self.server_address[0]), port)
        return self.websocket_api

    def import_handlers(self) -> None:
        """Import every function's handler now, in this one thread, before anything is
        served: a first request and the stream poller must not race one import (a module
        half-initialised by one thread is an ImportError in the other)."""
        for function in self.functions.values():
            function.handler()

    def start_schedules(self) -> list[ScheduleRunner]:
        """Run the template's scheduled functions (the holds-sweeper) on their rate."""
        for schedule in schedules(load_template()):
            runner = ScheduleRunner(schedule, self.functions[schedule.function].invoke)
            self.schedule_runners.append(runner.start())
        return self.schedule_runners

    def start_stream_pollers(self, ddb_endpoint: str) -> list[StreamPoller]:
        """Deliver each template stream event source (the ledger stream) to its function,
        from the stream's tip on. Separate from construction, so tests decide when."""
        for source in load_template().stream_sources():
            function = self.functions[source.function]
            poller = StreamPoller(source, function.invoke, endpoint=ddb_endpoint)
            self.stream_pollers.append(poller.start())
        return self.stream_pollers

    def stop_stream_pollers(self) -> None:
        while self.stream_pollers:
            self.stream_pollers.pop().stop()

    def server_close(self) -> None:
        """Stops the pollers and schedules first: they must not outlive the server or
        DynamoDB Local."""
        self.stop_stream_pollers()
        while self.schedule_runners:
            self.schedule_runners.pop().stop()
        if self.websocket_api is not None:
            self.websocket_api.stop()
        super().server_close()

    def serve_events(self, target: str, body: bytes) -> HttpResponse:
        """EventBridge's API (PutEvents), which boto3 reaches through
        AWS_ENDPOINT_URL_EVENTBRIDGE."""
        status, payload = self.fake_events.handle(target, body)
        headers = [("Content-Type", "application/x-amz-json-1.1")]
        return HttpResponse(status, headers, json.dumps(payload).encode())

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def answers_cors(self, path: str) -> bool:
        """Whether browsers on other origins may call `path`: the HTTP API's routes (as the
        stack's CORS configuration allows) and the development sign-in."""
        return (path + "/").startswith(self.api_prefixes) or path == SIGN_IN_PATH

    def serve_http_api(
        self,
        method: str,
        path: str,
        *,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
        protocol: str,
    ) -> HttpResponse:
        """One HTTP API request: route it, invoke its function, answer as API Gateway does."""
        for route in self.routes:
            parameters = route.match(method, path)
            if parameters is not None:
                break
        else:
            return NOT_FOUND
        authorizer = None
        if route.authorized:
            authorizer = self.verify_bearer(headers)
            if authorizer is None:
                return UNAUTHORIZED
        event = http_api_event(
            method,
            path,
            route_key=route.route_key,
            path_parameters={name: unquote(value) for name, value in parameters.items()},
            headers=headers,
            raw_query_string=query,
            body=body,
            source_ip=source_ip,
            protocol=protocol,
            authorizer=authorizer,
        )
        try:
            return http_api_response(self.functions[route.function].invoke(event))
        except Exception:
            traceback.print_exc()
            return INTERNAL_SERVER_ERROR

    @staticmethod
    def verify_bearer(headers: list[tuple[str, str]]) -> dict[str, Any] | None:
        """The JWT authorizer's context for a valid local bearer token, else None (401)."""
        value = next((v for k, v in headers if k.lower() == "authorization"), "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            return identity.authorizer_context(identity.verify(token.strip()))
        except jwt.InvalidTokenError:
            return None

    def serve_local(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> HttpResponse | None:
        """The dev server's own pages: the API's OpenAPI document, the fake Stripe API, the
        offline checkout page and the development sign-in."""
        if path == SIGN_IN_PATH and method == "POST":
            return self.mint_identity_token(body)
        if (
            path == identity.JWKS_PATH
            and method == "GET"
            and is_loopback(str(self.server_address[0]))
        ):
            return HttpResponse(200, JSON_HEADERS, json.dumps(identity.jwks()).encode())
        if path == AGENT_CREDENTIAL_PATH and method == "POST":
            return self.mint_agent_credential(body)
        if path == "/openapi.json" and method == "GET":
            document = (ROOT / "openapi.json").read_bytes()
            return HttpResponse(200, JSON_HEADERS, document)
        if path.startswith("/_stripe/"):
            status, payload = self.fake_stripe.handle(
                method, path.removeprefix("/_stripe"), dict(headers), body.decode()
            )
            if self.fake_stripe.outbox:  # its webhooks follow the answer, as Stripe's do
                threading.Timer(0.05, self.fake_stripe.flush).start()
            return HttpResponse(status, JSON_HEADERS, json.dumps(payload).encode())
        found = CHECKOUT_PAGE.match(path)
        if not found or found["id"] not in self.fake_stripe.sessions:
            return None
        session_id, action = found["id"], found["action"]
        session = self.fake_stripe.sessions[session_id]
        if method == "GET" and not action:
            page = offline_checkout.render(session)
            return HttpResponse(200, [("Content-Type", "text/html; charset=utf-8")], page.encode())
        if method == "POST" and action == "pay":
            card = parse_qs(body.decode()).get("card", ["pm_card_visa"])[0]
            paid = self.fake_stripe.pay(
                session_id, card=card if card in TEST_CARDS else "pm_card_visa"
            )
            self.deliver_stripe_event("checkout.session.completed", paid)
            self.fake_stripe.flush()  # payment_method.attached when the card was saved
            target = str(paid["success_url"]).replace("{CHECKOUT_SESSION_ID}", session_id)
            return HttpResponse(303, [("Location", target)])
        if method == "POST" and action == "cancel":
            return HttpResponse(303, [("Location", str(session["cancel_url"]))])
        return None

    def deliver_stripe_event(self, event_type: str, obj: dict[str, Any]) -> None:
        """A signed event from the fake Stripe to the webhook route, as Stripe sends it."""
        event = event_payload(event_type, obj)
        secret = os.environ.get("STRIPE_WEBHOOK_SECRET", LOCAL_WEBHOOK_SECRET)
        delivered = self.serve_http_api(
            "POST",
            "/webhooks/stripe",
            query="",
            headers=[
                ("Content-Type", "application/json"),
                ("Stripe-Signature", sign(event, secret)),
            ],
            body=event,
            source_ip="127.0.0.1",
            protocol="HTTP/1.1",
        )
        print(f"fake Stripe: {event_type} -> webhook {delivered.status}", file=sys.stderr)

    def mint_agent_credential(self, body: bytes) -> HttpResponse:
        """`POST /_local/agent-credential` `{customer_id, vm_id, ttl_s?}` -> the credential
        the control plane would hand that VM's agent (`tools.agent_credential`). Loopback
        only, like the development sign-in."""
        if not is_loopback(str(self.server_address[0])):
            return api_error(403, "forbidden", "agent credentials are only minted on loopback")
        try:
            request = json.loads(body or b"{}")
            minted = agent_credential.mint(
                str(request["customer_id"]),
                str(request["vm_id"]),
                ttl_s=int(request.get("ttl_s", CREDENTIAL_TTL_DEFAULT_S)),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return api_error(400, "invalid_request", "send {customer_id, vm_id, ttl_s?}")
        return HttpResponse(200, JSON_HEADERS, json.dumps(minted).encode())

    def mint_identity_token(self, body: bytes) -> HttpResponse:
        """`POST /_local/identity/token` `{customer_id}` or `{admin: true}` -> `{token}`: the
        web app's sign-in on the dev server, a token from the development identity
        (`local.identity`). Dev only: answered only while the server binds loopback."""
        if not is_loopback(str(self.server_address[0])):
            return api_error(403, "forbidden", "development sign-in is only served on loopback")
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return api_error(400, "invalid_request", "the body must be JSON")
        if not isinstance(request, dict) or set(request) - {"customer_id", "admin"}:
            return api_error(400, "invalid_request", "send {customer_id} or {admin: true}")
        customer_id, admin = request.get("customer_id"), request.get("admin", False)
        if customer_id is not None and (
            not isinstance(customer_id, str) or not CUSTOMER_ID.match(customer_id)
        ):
            return api_error(400, "invalid_request", "customer_id: letters, digits, _ and -")
        if not isinstance(admin, bool) or (customer_id is None and not admin):
            return api_error(400, "invalid_request", "send {customer_id} or {admin: true}")
        token = identity.mint(customer_id=customer_id, admin=admin)
        return HttpResponse(200, JSON_HEADERS, json.dumps({"token": token}).encode())

    def serve_web(self, method: str, path: str) -> HttpResponse | None:
        """The web app's static files from web/demo-dist, with index.html for the app's own
        routes (/dashboard, /checkout/success, ...); None for API and dev server paths, or
        when the app is not built."""
        if method not in ("GET", "HEAD") or self.web_root is None:
            return None
        if (path + "/").startswith((*NOT_WEB_PATHS, *self.api_prefixes)):
            return None
        root = self.web_root.resolve()
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
        if file.name == "config.json" and self.websocket_api and self.websocket_api.port:
            content = with_socket_url(content, self.websocket_api.url)
        return HttpResponse(200, headers, content)

    def serve_invoke(self, name: str, invocation_type: str, payload: bytes) -> HttpResponse:
        """One Lambda Invoke API call, answered the way the Lambda service answers it."""
        function = self.functions.get(function_name_of(name))
        if function is None:
            return lambda_error(404, "ResourceNotFoundException", f"Function not found: {name}")
        try:
            event = json.loads(payload) if payload.strip() else {}
        except ValueError as error:
            return lambda_error(
                400,
                "InvalidRequestContentException",
                f"Could not parse request body into json: {error}",
            )
        if invocation_type == "DryRun":
            return HttpResponse(204)
        if invocation_type == "Event":
            threading.Thread(target=self._invoke_async, args=(function, event), daemon=True).start()
            return HttpResponse(202)
        if invocation_type != "RequestResponse":
            return lambda_error(
                400,
                "InvalidParameterValueException",
                f"Unsupported invocation type: {invocation_type}",
            )
        try:
            result = function.invoke(event)
        except Exception as error:
            traceback.print_exc()
            stack = traceback.format_list(traceback.extract_tb(error.__traceback__))
            return function_error(type(error).__name__, str(error), stack)
        try:
            body = json.dumps(result)
        except (TypeError, ValueError) as error:
            return function_error(
                "Runtime.MarshalError", f"Unable to marshal response: {error}", []
            )
        headers = [*JSON_HEADERS, ("X-Amz-Executed-Version", "$LATEST")]
        return HttpResponse(200, headers, body.encode())

    @staticmethod
    def _invoke_async(function: LocalFunction, event: Any) -> None:
        """An Event invocation: nobody waits for it, so a failure is only printed."""
        try:
            function.invoke(event)
        except Exception:
            traceback.print_exc()


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
        if not invoke and target.path.startswith(("/_stripe/", "/_local/", "/openapi.json")):
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


def build_server(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    web_root: Path | None = WEB_ROOT,
    cors_origins: tuple[str, ...] = cors.DEFAULT_ORIGINS,
) -> DevServer:
    """The dev server bound to (host, port), not yet serving; port 0 picks a free one.

    Needs no DynamoDB: handlers are imported on their first invocation and read the
    environment then. `web_root` (the built web app) is served when it holds index.html;
    web apps on `cors_origins` may call the API from the browser.
    """
    ensure_on_path(SHARED_LAYER)
    return DevServer((host, port), web_root, cors_origins)


def function_environment(
    server_url: str, cors_origins: Sequence[str] = cors.DEFAULT_ORIGINS
) -> dict[str, str]:
    """The union of every function's template environment (TABLE_NAME -> LedgerTable),
    with the local stand-ins for what a deployment configures: Stripe (offline unless
    STRIPE_SECRET_KEY is set, then real Stripe test mode) and the Checkout redirects, which
    may return to this server and to the web apps allowed by CORS."""
    environment: dict[str, str] = {}
    for spec in load_template().functions().values():
        environment.update(spec.environment)
    environment.pop("STRIPE_SECRET_ARN", None)
    environment.update(
        STAGE="local",
        CHECKOUT_REDIRECT_ORIGINS=",".join(dict.fromkeys([server_url, *cors_origins])),
        CHECKOUT_SUCCESS_URL=f"{server_url}/checkout/success",
        CHECKOUT_CANCEL_URL=f"{server_url}/checkout/cancel",
        # boto3's variable for EventBridge is named after its service id, not `events`.
        AWS_ENDPOINT_URL_EVENTBRIDGE=server_url,
        # The debit function verifies VM agent credentials with this checkout's own keys
        # (`python -m tools.agent_credential` or POST /_local/agent-credential mints them).
        AGENT_CREDENTIAL_KEYS=agent_credential.local_keys_document(),
    )
    environment.update(local_websocket_environment(server_url))
    environment.pop("AGENT_CREDENTIAL_SECRET_ARN", None)
    if os.environ.get("STRIPE_SECRET_KEY"):
        environment["STRIPE_SECRET_KEY"] = os.environ["STRIPE_SECRET_KEY"]
        environment["STRIPE_WEBHOOK_SECRET"] = os.environ.get(
            "STRIPE_WEBHOOK_SECRET", LOCAL_WEBHOOK_SECRET
        )
    else:
        environment.update(
            STRIPE_SECRET_KEY=LOCAL_SECRET_KEY,
            STRIPE_WEBHOOK_SECRET=LOCAL_WEBHOOK_SECRET,
            STRIPE_API_BASE=f"{server_url}/_stripe",
        )
    return environment


def banner(server: DevServer, ddb: dynamodb_local.DynamoDBLocal, data_dir: Path = DATA_DIR) -> str:
    """What a developer needs to start: URLs, routes, an invoke example, how to seed."""
    web = server.web_root is not None and (server.web_root / "index.html").is_file()
    lines = [
        f"Web app       {server.url}/" if web else "Web app       not built (`make web`)",
        f"HTTP API      {server.url}",
    ]
    lines += [f"  {route.method:<7} {route.path:<32} {route.function}" for route in server.routes]
    # Lines starting with "$ " run as written from the checkout (a test runs them): the
    # debit carries the VM's agent credential, as every op must (RequireAgentCredentials).
    customer, vm = EXAMPLE_DEBIT["customer_id"], EXAMPLE_VM
    example = (
        ".venv/bin/python -c 'import boto3, json; from tools.agent_credential import mint; "
        f'lam = boto3.client("lambda", endpoint_url="{server.url}", '
        f'region_name="{dynamodb_local.LOCAL_REGION}", aws_access_key_id="x", '
        'aws_secret_access_key="x"); '
        f'payload = dict({json.dumps(EXAMPLE_DEBIT)}, credential=mint("{customer}", "{vm}")'
        '["credential"]); print(lam.invoke(FunctionName="DebitFunction", '
        'Payload=json.dumps(payload))["Payload"].read().decode())\''
    )
    seed_port = "" if ddb.port == DEFAULT_DDB_PORT else f" --ddb-port {ddb.port}"
    streamed = ", ".join(poller.source.function for poller in server.stream_pollers) or "nothing"
    lines += [
        f"Invoke API    {server.url}/2015-03-31/functions/<name>/invocations",
        f"  functions: {', '.join(server.functions)}",
        "  every op carries the VM's agent credential: POST"
        f' {server.url}{AGENT_CREDENTIAL_PATH} {{"customer_id", "vm_id"}} mints one, or',
        f"  .venv/bin/python -m tools.agent_credential --customer {customer} --vm {vm}"
        " [--credential-only]; a debit with one (seed tokens first):",
        f"  $ {example}",
        f"DynamoDB Local {ddb.endpoint}  data: {shown_path(data_dir)}/",
        f"CORS          {', '.join(server.cors.allow_origins) or 'no origin'} may call the API"
        f" and be Checkout's return origins (--cors-origins or {cors.ORIGINS_ENV})",
        "Seed tokens   through the real ledger, as a grant:",
        f"  $ .venv/bin/python -m local.seed --customer {customer} --tokens 1000{seed_port}",
        "Sign in       .venv/bin/python -m local.identity --customer cust_demo   (or --admin):"
        " send it as `Authorization: Bearer <token>`; the web app uses"
        f" POST {SIGN_IN_PATH}",
        "Stripe        "
        + (
            "real Stripe test mode (STRIPE_SECRET_KEY is set)"
            if os.environ.get("STRIPE_API_BASE") is None
            else f"offline: checkout_url opens {server.url}/_local/checkout/<session>, whose"
            " Pay button sends the webhook a signed checkout.session.completed"
        ),
        f"Ledger stream DynamoDB Local's stream -> {streamed} every {POLL_INTERVAL_S} s;"
        f" EventBridge PutEvents on {server.url} -> console and"
        f" {shown_path(server.fake_events.log_path or EVENTS_LOG)}",
        *([server.websocket_api.banner_line()] if server.websocket_api else []),
        "Handlers run in this process: restart to pick up code changes. Ctrl-C stops.",
    ]
    return "\n".join(lines)


def shown_path(path: Path) -> Path:
    """`path` relative to the checkout when inside it, else as given."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.devserver", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--ddb-port", type=int, default=DEFAULT_DDB_PORT)
    parser.add_argument("--ws-port", type=int, default=DEFAULT_WS_PORT, help="WebSocket API")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DATA_DIR,
        help=f"DynamoDB Local's data folder (default: {shown_path(DATA_DIR)}); tests pass a"
        " temporary one",
    )
    parser.add_argument(
        "--cors-origins",
        type=_origins_argument,
        default=os.environ.get(cors.ORIGINS_ENV, ",".join(cors.DEFAULT_ORIGINS)),
        help="comma-separated origins of web apps on other ports that may call the API and"
        f" that Checkout may return to (default: ${cors.ORIGINS_ENV}, else localhost and"
        f" 127.0.0.1 on ports {', '.join(map(str, cors.DEFAULT_PORTS))})",
    )
    # argparse runs a string default through `type` too: a bad environment variable is an
    # error like a bad flag.
    return parser.parse_args(argv)


def _origins_argument(value: str) -> tuple[str, ...]:
    try:
        return cors.parse_origins(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM and SIGHUP unwind like Ctrl-C, through the `finally` that stops DynamoDB Local.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on_signal)
    try:
        server = build_server(args.host, args.port, cors_origins=args.cors_origins)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        print(f"Port {args.port} is already in use; choose another with --port.", file=sys.stderr)
        return 1
    if port_in_use(args.ddb_port):
        server.server_close()
        print(
            f"Port {args.ddb_port} is already in use (another `make dev`?); DynamoDB Local "
            "needs it. Stop that process or choose another port with --ddb-port.",
            file=sys.stderr,
        )
        return 1
    try:
        ddb = dynamodb_local.start(port=args.ddb_port, data_dir=args.data_dir.resolve())
        # A run on its own data (e2e tests) keeps its events beside that data, not in the
        # developer's .local/events.jsonl.
        if args.data_dir.resolve() != DATA_DIR.resolve():
            server.fake_events.log_path = args.data_dir.resolve() / "events.jsonl"
    except RuntimeError as error:
        server.server_close()
        print(f"Could not start DynamoDB Local: {error}", file=sys.stderr)
        return 1
    try:
        dynamodb_local.create_tables(ddb.client())
        os.environ.update(function_environment(server.url, args.cors_origins))
        os.environ.update(dynamodb_local.local_aws_environment(ddb.endpoint))
        server.import_handlers()
        server.start_stream_pollers(ddb.endpoint)
        server.start_schedules()
        server.start_websocket_api(args.ws_port)
        print(banner(server, ddb, args.data_dir.resolve()), flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()  # stops the stream pollers before DynamoDB Local goes
        ddb.stop()
        print("Stopped the dev server and DynamoDB Local.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
