"""Generate openapi.json from the HTTP functions' Powertools resolvers and their pydantic
models, merged into one document, with the template's auth per route.

    python -m tools.openapi            # write openapi.json
    python -m tools.openapi --check    # exit 1 when the committed file is stale
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any

from local.template import ROOT, load_template

OUTPUT = ROOT / "openapi.json"
TITLE = "Token billing API"
VERSION = "1.0.0"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "retryable"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "retryable": {"type": "boolean"},
            },
            "additionalProperties": True,
        }
    },
}
# The HTTP API's JWT authorizer answers a missing, expired or forged token itself, before
# any function runs, with its own body; API Gateway offers no way to change it. A token the
# authorizer accepts but that names no subject gets the function's own 401 (the one shape).
GATEWAY_UNAUTHORIZED_SCHEMA = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string", "const": "Unauthorized"}},
}
UNAUTHORIZED_DESCRIPTION = (
    'No valid bearer token: API Gateway\'s own body {"message": "Unauthorized"}, or the one '
    "error shape when the token carries no subject"
)
ERROR_STATUSES = {
    "400": "Invalid request",
    "401": "No valid bearer token",
    "403": "Not this caller's customer",
    "409": "Idempotency key reused for another request",
    "503": "Retryable: try again with the same idempotency key",
}
WEBHOOK_PATH = {
    "post": {
        "tags": ["webhooks"],
        "summary": "Stripe events (signed; verified before anything else)",
        "operationId": "stripe_webhook",
        "parameters": [
            {
                "name": "Stripe-Signature",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "responses": {
            "200": {
                "description": "Event applied or ignored",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "received": {"type": "boolean"},
                                "action": {"type": "string"},
                                "order_id": {"type": ["string", "null"]},
                                "detail": {"type": ["string", "null"]},
                            },
                        }
                    }
                },
            },
            "400": {"$ref": "#/components/responses/Error"},
            "503": {"$ref": "#/components/responses/Error"},
        },
        "security": [],
    }
}


def _resolver_schema(logical_id: str) -> dict[str, Any]:
    spec = load_template().functions()[logical_id]
    for folder in (ROOT / "layers" / "shared", spec.code_uri):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    module = importlib.import_module(spec.module_name)
    schema: dict[str, Any] = json.loads(
        module.app.get_openapi_json_schema(title=TITLE, version=VERSION)
    )
    return schema


def document_actual_replies(method: str, path: str, responses: dict[str, Any]) -> None:
    """What these routes really send, where the resolver's generated document differs: the
    grant answers 201 (200 on a replay), the export is CSV with a continuation header."""
    if (method, path) == ("post", "/api/v1/customers/{id}/tokens/grants"):
        granted = dict(responses["200"])
        responses["201"] = {**granted, "description": "Granted: the new grant entry"}
        responses["200"] = {**granted, "description": "A replay: the first grant, unchanged"}
    if (method, path) == ("put", "/api/v1/customers/{id}/tokens/auto-top-up"):
        responses["403"] = {
            "description": "Not this caller's customer, or `cardholder_only`: an admin asked "
            "for more than turning auto top-up off or lowering its caps",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    if (method, path) == ("get", "/api/v1/customers/{id}/tokens/export"):
        responses["200"] = {
            "description": "The ledger as CSV, oldest first; X-Next-Cursor continues it",
            "headers": {
                "X-Next-Cursor": {"schema": {"type": "string"}, "required": False},
            },
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }


def to_template_path(resolver_path: str) -> str:
    """Powertools writes `{customer_id}`; the API's path parameter is `{id}`."""
    return resolver_path.replace("{customer_id}", "{id}")


def build() -> dict[str, Any]:
    os.environ.setdefault("TABLE_NAME", "LedgerTable")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "TokenBilling")
    routes = {(r.method.lower(), r.path): r for r in load_template().http_routes()}
    functions = sorted(
        {route.function for route in routes.values() if route.function != "WebhookFunction"}
    )
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for logical_id in functions:
        schema = _resolver_schema(logical_id)
        schemas.update(schema.get("components", {}).get("schemas", {}))
        for resolver_path, operations in schema.get("paths", {}).items():
            path = to_template_path(resolver_path)
            for method, operation in operations.items():
                route = routes.get((method, path))
                assert route is not None, f"{method} {path} is not a route of template.yaml"
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "path" and parameter["name"] == "customer_id":
                        parameter["name"] = "id"
                operation["security"] = [{"bearerAuth": []}] if route.authorized else []
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)  # errors use our own shape and 400
                for status in ERROR_STATUSES:
                    if status in ("401", "403") and not route.authorized:
                        continue
                    reference = "Unauthorized" if status == "401" else "Error"
                    responses.setdefault(status, {"$ref": f"#/components/responses/{reference}"})
                document_actual_replies(method, path, responses)
                paths.setdefault(path, {})[method] = operation
    paths["/webhooks/stripe"] = WEBHOOK_PATH
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.pop("ResponseValidationError", None)  # refers to ValidationError; unused
    schemas["Error"] = ERROR_SCHEMA
    schemas["GatewayUnauthorized"] = GATEWAY_UNAUTHORIZED_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": (
                "Prepaid token billing. Token amounts appear as exact decimal strings and as "
                "integer milli-tokens (`*_mt`). Errors: "
                + "; ".join(f"{code} {text}" for code, text in ERROR_STATUSES.items())
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": {
                "Error": {
                    "description": "The one error shape",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
                "Unauthorized": {
                    "description": UNAUTHORIZED_DESCRIPTION,
                    "content": {
                        "application/json": {
                            "schema": {
                                "anyOf": [
                                    {"$ref": "#/components/schemas/GatewayUnauthorized"},
                                    {"$ref": "#/components/schemas/Error"},
                                ]
                            }
                        }
                    },
                },
            },
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print("openapi.json is stale: run `make openapi` and commit it")
            return 1
        print("openapi.json is up to date")
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
