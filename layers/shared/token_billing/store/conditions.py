"""What a failed single-item write means."""

from __future__ import annotations

from botocore.exceptions import ClientError


def condition_failed(error: ClientError) -> bool:
    """Whether a single-item write failed its ConditionExpression (not a transaction)."""
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
