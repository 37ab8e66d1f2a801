"""Where the dev server keeps things and what its functions find in their environment:
the checkout's folders (the layer, DynamoDB Local's data, the web app, the events log), the
default ports, and the environment variables a deployment would give the functions."""

from __future__ import annotations

import os
from collections.abc import Sequence

from local import cors
from local.fake_stripe import LOCAL_SECRET_KEY, LOCAL_WEBHOOK_SECRET
from local.template import ROOT, load_template
from local.websocket import local_environment as local_websocket_environment
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
        STACK_NAME="local",
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
    # The template's billing switches (StripeInvoices, StripeTax, CollectTaxIds) may be
    # tried locally: `STRIPE_TAX=true make dev`.
    for switch in ("STRIPE_INVOICES", "STRIPE_TAX", "COLLECT_TAX_IDS"):
        if switch in os.environ:
            environment[switch] = os.environ[switch]
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
