"""API Gateway v2 proxy responses for handlers that answer without a resolver (the
webhook), so they skip the resolver's import cost."""

from __future__ import annotations

import json
from typing import Any

from token_billing.core.errors import BillingError


def json_response_dict(status: int, body: Any) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def error_response_dict(error: BillingError) -> dict[str, Any]:
    return json_response_dict(error.status, error.to_body())
