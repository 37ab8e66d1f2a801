"""DynamoDB Local for the whole test session: started once, in memory, stopped at the end.

Tests share the template's tables and stay apart by using their own customer ids. Every
function's AWS calls are held to its IAM role in template.yaml (`local.iam_check`), whether
a test calls its handler directly or through the dev server; a test's own calls (writing
fixtures, reading results) are not.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from local import dynamodb_local, iam_check
from local.devserver import DevServer, build_server
from local.lambda_runtime import hold_handlers_to_their_roles
from local.template import load_template
from token_billing import runtime
from token_billing.store.ledger import Ledger

# At import, before any test module imports a handler (`from debit_handler import ...`) or
# any function makes a boto3 client.
iam_check.install()
hold_handlers_to_their_roles(load_template())


@pytest.fixture(scope="session")
def ddb_local() -> Iterator[dynamodb_local.DynamoDBLocal]:
    with dynamodb_local.running() as instance:
        dynamodb_local.create_tables(instance.client())
        yield instance


@pytest.fixture(autouse=True)
def local_aws(ddb_local: dynamodb_local.DynamoDBLocal) -> Iterator[None]:
    """Point boto3, and so the unchanged handlers, at the session's DynamoDB Local."""
    saved = dict(os.environ)
    local = dynamodb_local.local_aws_environment(ddb_local.endpoint)
    local["TABLE_NAME"] = "LedgerTable"
    os.environ.update(local)
    runtime.reset()
    yield
    # The environment as it was, but still pointing at DynamoDB Local, never for a moment
    # not: the module-scoped dev server's background work (its stream pollers, the fake
    # Stripe's webhooks, sent after the answer) may run between two tests, and what it
    # creates then (the shared DynamoDB client) must reach DynamoDB Local, never AWS.
    after = {**saved, **local}
    for name in [name for name in os.environ if name not in after]:
        del os.environ[name]
    os.environ.update(after)
    runtime.reset()


@pytest.fixture
def ledger(ddb_local: dynamodb_local.DynamoDBLocal) -> Ledger:
    return Ledger(ddb_local.client(), "LedgerTable")


@pytest.fixture(scope="module")
def dev_server() -> Iterator[DevServer]:
    """The dev server on a free port, serving the template's routes in-process."""
    server = build_server("127.0.0.1", 0)
    server.fake_events.log_path = None  # never into a running `make dev`'s .local/events.jsonl
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
