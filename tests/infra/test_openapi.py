"""openapi.json is generated from the resolvers' models; a stale committed copy fails."""

import json

from tools.openapi import OUTPUT, render


def test_committed_openapi_document_is_current() -> None:
    assert OUTPUT.read_text() == render(), "openapi.json is stale: run `make openapi`"


def test_every_customer_route_needs_a_bearer_token_and_the_catalog_does_not() -> None:
    paths = json.loads(OUTPUT.read_text())["paths"]
    for path, operations in paths.items():
        for operation in operations.values():
            expected: list[dict[str, list[str]]] = (
                [{"bearerAuth": []}] if path.startswith("/api/v1/customers/") else []
            )
            assert operation["security"] == expected, path


def test_every_reference_resolves() -> None:
    import re

    document = json.loads(OUTPUT.read_text())
    names = set(re.findall(r"#/components/schemas/([A-Za-z0-9_.-]+)", OUTPUT.read_text()))
    assert names <= set(document["components"]["schemas"])
