"""Schemathesis (pinned in requirements/dev.txt) against the dev server's own openapi.json,
in positive and negative modes, through the dev server's routing and JWT check into the
real handlers on DynamoDB Local: no 5xx, and no status, content type or body outside what
the document says. Bounded: a few examples per operation and mode (about 20 s in all).

Driven through schemathesis' Python API rather than its pytest plugin: the plugin of the
pinned release reads a private attribute pytest 9 no longer has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from local import identity
from local.devserver import DevServer
from tests.integration.helpers import use_local_stripe

pytestmark = pytest.mark.integration
EXAMPLES_PER_MODE = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# The catalog routes take no parameter and no body: nothing to make negative.
NO_INPUT = {"GET /api/v1/token-packages", "GET /api/v1/token-rates"}
SCHEMA = schemathesis.openapi.from_path(Path(__file__).resolve().parents[2] / "openapi.json")
OPERATIONS: dict[str, Any] = {
    op.label: op
    for op in (result.ok() for result in SCHEMA.get_all_operations())  # type: ignore[union-attr]
}


@pytest.fixture(autouse=True)
def stripe_env(dev_server: DevServer, local_aws: None) -> None:
    use_local_stripe(dev_server)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_generated_request_breaks_a_route_or_its_schema(
    label: str, mode: GenerationMode, dev_server: DevServer
) -> None:
    headers = {"Authorization": f"Bearer {identity.mint(admin=True)}"}
    strategy = OPERATIONS[label].as_strategy(generation_mode=mode)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        case.call_and_validate(base_url=dev_server.url, headers=headers, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        # An operation without parameters or body has no input that breaks its schema.
        assert mode is GenerationMode.NEGATIVE
        assert label in NO_INPUT, label
