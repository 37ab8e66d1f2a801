"""`make dev`'s composition root: builds the dev server from its parts and runs it.

What `make dev` is and stands in for: `local.cli.DESCRIPTION` (its `--help`). The parts:

    local.lambda_runtime  the template's functions run in this process; the Invoke API
    local.iam_check       each function's AWS calls held to its IAM role in the template
    local.http_router     the HTTP port: which kind of request goes where
    local.http_api        the template's HTTP API: routes, JWT authorizer, 2.0 events
    local.websocket       the template's WebSocket API and its Management API
    local.local_pages     pages only the dev server has: checkout, sign-in, JWKS, ...
    local.web_app         the built demo web app's files
    local.environment     paths, default ports, the functions' environment variables
    local.cli             the command line: arguments, banner, signals

`main` is here, not in `local.cli`, because it is the wiring: it starts the parts in
order (DynamoDB Local, the environment, the handlers, the pollers, the sockets) and stops
them in reverse.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Sequence
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from local import cors, dynamodb_local, iam_check
from local.apigw import HttpResponse
from local.cli import banner, parse_args, stop_on_signals
from local.ddb_streams import StreamPoller
from local.dynamodb_local import port_in_use
from local.environment import (
    DATA_DIR,
    DEFAULT_HOST,
    DEFAULT_PORT,
    EVENTS_LOG,
    SHARED_LAYER,
    WEB_ROOT,
    function_environment,
)
from local.fake_events import FakeEventBridge
from local.fake_stripe import LOCAL_WEBHOOK_SECRET, FakeStripe
from local.http_api import LocalHttpApi
from local.http_router import DevRequestHandler
from local.lambda_runtime import ensure_on_path, local_functions, serve_invoke
from local.local_pages import SIGN_IN_PATH, LocalPages, is_loopback
from local.schedules import ScheduleRunner, schedules
from local.stripe_wire import event_payload, sign
from local.template import HttpRoute, load_template
from local.web_app import serve_web_app
from local.websocket import LocalWebSocketApi
from local.websocket_template import websocket_api


class DevServer(ThreadingHTTPServer):
    """The HTTP server and the parts it wires: the template's functions, its HTTP and
    WebSocket APIs, the local pages, the web app, the fake Stripe and EventBridge, and the
    stream pollers and schedules that invoke functions on their own. `DevRequestHandler`
    asks its `serve_*` methods for the answers."""

    # A second server on the same port must fail to bind, not share the port's traffic.
    allow_reuse_port = False

    def __init__(
        self,
        address: tuple[str, int],
        web_root: Path | None = WEB_ROOT,
        cors_origins: tuple[str, ...] = cors.DEFAULT_ORIGINS,
    ) -> None:
        template = load_template()
        # Before any function makes a client: each one's AWS calls are held to its role.
        iam_check.install()
        self.functions = local_functions(template)
        self.http_api = LocalHttpApi(template.http_routes(), self.functions)
        self.routes: list[HttpRoute] = self.http_api.routes
        self.web_root = web_root
        self.cors = cors.rules_for(cors_origins)
        super().__init__(address, DevRequestHandler)
        self.fake_stripe = FakeStripe(public_base=self.url)
        self.fake_stripe.webhook_sink = self.deliver_stripe_event  # auto top-up's events
        self.fake_events = FakeEventBridge(EVENTS_LOG)
        self.local_pages = LocalPages(
            self.fake_stripe,
            self.deliver_stripe_event,
            loopback=is_loopback(str(self.server_address[0])),
        )
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
        check = iam_check.install()
        for source in load_template().stream_sources():
            # Lambda refuses the mapping (the deploy fails) unless the role reads the stream.
            refusal = check.stream_source_refusal(source.function, source.table)
            if refusal is not None:
                raise PermissionError(refusal)
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
        return self.http_api.owns(path) or path == SIGN_IN_PATH

    def serve_local(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> HttpResponse | None:
        """The dev server's own pages (`local.local_pages`), or None when `path` is none."""
        return self.local_pages.serve(method, path, headers, body)

    def deliver_stripe_event(self, event_type: str, obj: dict[str, Any]) -> None:
        """A signed event from the fake Stripe to the webhook route, as Stripe sends it."""
        event = event_payload(event_type, obj)
        secret = os.environ.get("STRIPE_WEBHOOK_SECRET", LOCAL_WEBHOOK_SECRET)
        delivered = self.http_api.serve(
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

    def serve_web(self, method: str, path: str) -> HttpResponse | None:
        """The built web app's page or file at `path` (`local.web_app`), else None."""
        sockets = self.websocket_api
        return serve_web_app(
            self.web_root,
            method,
            path,
            api_prefixes=self.http_api.path_prefixes,
            socket_url=sockets.url if sockets and sockets.port else None,
        )

    def serve_invoke(self, name: str, invocation_type: str, payload: bytes) -> HttpResponse:
        """One Lambda Invoke API call, answered the way the Lambda service answers it."""
        return serve_invoke(self.functions, name, invocation_type, payload)


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


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m local.devserver`: DynamoDB Local, the tables, the functions' environment,
    then the server and what runs beside it, until Ctrl-C or a signal stops them all."""
    args = parse_args(argv)
    stop_on_signals()
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
