"""The dev server's command line: its arguments, the banner it prints when it is up, and
stopping on a signal as on Ctrl-C."""

from __future__ import annotations

import argparse
import json
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from local import cors, dynamodb_local, iam_check
from local.ddb_streams import POLL_INTERVAL_S
from local.environment import (
    DATA_DIR,
    DEFAULT_DDB_PORT,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_WS_PORT,
    EVENTS_LOG,
)
from local.local_pages import AGENT_CREDENTIAL_PATH, SIGN_IN_PATH
from local.template import ROOT

if TYPE_CHECKING:
    from local.devserver import DevServer

# What `python -m local.devserver --help` says the dev server is.
DESCRIPTION = """\
`make dev`: the template's HTTP API and the Lambda Invoke API on one port, over DynamoDB
Local, with the unchanged handlers running in this process.

It stands in for `sam local start-api` plus `sam local start-lambda` without Docker: routes,
handlers and environment all come from template.yaml, requests become real payload format
2.0 events, and the Invoke API answers like Lambda's, so boto3 clients work unchanged.
"""
EXAMPLE_VM = "vm-1"
EXAMPLE_DEBIT = {
    "customer_id": "cust_demo",
    "idempotency_key": "k1",
    "usage": [{"action": "api_call", "quantity": 3, "vm_id": EXAMPLE_VM}],
}


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
        f"IAM           each function's AWS calls held to its role in"
        f" {shown_path(iam_check.template_path())} (LOCAL_IAM_TEMPLATE); a refusal prints"
        " `IAM (local check): <function>: AccessDeniedException: ...`",
        "Handlers run in this process: restart to pick up code changes. Ctrl-C stops.",
    ]
    return "\n".join(lines)


def shown_path(path: Path) -> Path:
    """`path` relative to the checkout when inside it, else as given."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, through the `finally` that stops DynamoDB
    Local."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on_signal)


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.devserver", description=DESCRIPTION)
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
