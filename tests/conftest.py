"""Fixtures every test folder shares: environment for the handlers, ids, sample events."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

# Handlers read these at import; set before any test imports one.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "TokenBilling")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "tests")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("TABLE_NAME", "LedgerTable")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
# The debit ops' own tests run as on a trusted host (RequireAgentCredentials=false);
# tests/integration/test_agent_credentials.py turns credentials on, as the template does.
os.environ.setdefault("REQUIRE_AGENT_CREDENTIALS", "false")


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/, the same file `sam local invoke -e` takes."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


@pytest.fixture
def customer_id() -> str:
    return f"cust_{uuid.uuid4().hex[:16]}"


class FakeLambdaContext:
    function_name = "test-function"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/test-function"
    log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def fake_context() -> Any:
    """A context for calling a handler whose signature names Powertools' LambdaContext."""
    return FakeLambdaContext()


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()
