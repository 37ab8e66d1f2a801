"""The cold-start reference handlers import what their row says, and nothing of ours."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.cold_start import REFERENCES, STACKS_DIR

# Which of the heavy building blocks each reference must load, and which it must not.
EXPECTED = {
    "stack_logger_metrics": {"pydantic": False, "aws_xray_sdk": False, "event_handler": False},
    "stack_resolver": {"pydantic": False, "aws_xray_sdk": False, "event_handler": True},
    "stack_resolver_pydantic": {"pydantic": True, "aws_xray_sdk": False, "event_handler": True},
    "stack_tracer": {"pydantic": False, "aws_xray_sdk": True, "event_handler": False},
    "stack_api_no_client": {"pydantic": True, "aws_xray_sdk": False, "event_handler": True},
    "stack_api_stripe": {"pydantic": True, "aws_xray_sdk": False, "event_handler": True},
    "stack_stream_stripe": {"pydantic": False, "aws_xray_sdk": False, "event_handler": False},
}
# And which load boto3 and stripe.
CLIENTS = {
    "stack_logger_metrics": {"boto3": True, "stripe": False},
    "stack_resolver": {"boto3": True, "stripe": False},
    "stack_resolver_pydantic": {"boto3": True, "stripe": False},
    "stack_tracer": {"boto3": True, "stripe": False},
    "stack_api_no_client": {"boto3": False, "stripe": False},
    "stack_api_stripe": {"boto3": True, "stripe": True},
    "stack_stream_stripe": {"boto3": True, "stripe": True},
}
PROBE = """\
import json, sys
sys.path.insert(0, {stacks!r})
__import__({module!r})
loaded = set(sys.modules)
print(json.dumps({{
    "pydantic": "pydantic" in loaded,
    "aws_xray_sdk": "aws_xray_sdk.core" in loaded,
    "event_handler": "aws_lambda_powertools.event_handler" in loaded,
    "boto3": "boto3" in loaded,
    "stripe": "stripe" in loaded,
    "ours": sorted(m for m in loaded if m.split(".")[0] in ("token_billing", "bench")),
}}))
"""
ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "dummy",
    "AWS_SECRET_ACCESS_KEY": "dummy",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_LAMBDA_FUNCTION_NAME": "reference",
}


def test_every_reference_has_an_expectation() -> None:
    assert set(EXPECTED) == set(REFERENCES) == set(CLIENTS)
    on_disk = {path.stem for path in STACKS_DIR.glob("stack_*.py")}
    assert on_disk == set(REFERENCES)


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_reference_loads_exactly_its_building_blocks(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-c", PROBE.format(stacks=str(STACKS_DIR), module=module)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded.pop("ours") == []
    assert loaded == EXPECTED[module] | CLIENTS[module]
