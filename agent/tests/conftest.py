"""Fixtures for the token meter's tests: the package on the path, fresh customer ids, and
meters on a temporary spool that are always closed (fakes live in meter_fakes.py)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from token_meter import Meter
    from token_meter.protocol import LambdaInvoker

# The package under test, importable without installing it (pip install ./agent does that
# for real VMs); the repo root is already on the path through the root pyproject's pytest.
AGENT_DIR = Path(__file__).resolve().parents[1]
if str(AGENT_DIR) not in sys.path:
    sys.path.insert(0, str(AGENT_DIR))

# The dev server imports the unchanged handlers, which read these at import (as the
# repo's tests/conftest.py sets them for its own tests).
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "TokenBilling")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "tests")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("TABLE_NAME", "LedgerTable")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")


@pytest.fixture
def customer_id() -> str:
    return f"cust_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    return tmp_path / "spool.sqlite3"


@pytest.fixture
def make_meter(spool_path: Path, customer_id: str) -> Iterator[Callable[..., Meter]]:
    """Meters with fast retries and no timed cuts unless asked; closed at teardown."""
    from token_meter import Meter

    meters: list[Meter] = []

    def make(client: LambdaInvoker, **options: Any) -> Meter:
        options.setdefault("spool_path", spool_path)
        options.setdefault("flush_interval_s", 3600.0)
        options.setdefault("retry_base_s", 0.001)
        options.setdefault("retry_cap_s", 0.01)
        options.setdefault("close_timeout_s", 2.0)
        options.setdefault("settle_wait_s", 2.0)
        meter = Meter(options.pop("customer_id", customer_id), lambda_client=client, **options)
        meters.append(meter)
        return meter

    yield make
    for meter in meters:
        meter.close(timeout_s=1.0)
