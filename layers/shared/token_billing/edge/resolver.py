"""The HTTP API's resolver factory: pydantic validation on, and every failure in the one
error shape `{"error": {"code", "message", "retryable"}}` with its status."""

from __future__ import annotations

import binascii
import json
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from token_billing.core.errors import BillingError, InvalidRequest, NotFound
from token_billing.core.observability import logger

API_TITLE = "Token billing API"
API_VERSION = "1.0.0"


def error_response(error: BillingError) -> Response[str]:
    return Response(
        status_code=error.status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error.to_body()),
    )


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """Pydantic's errors as one readable sentence, without echoing the input back."""
    parts = []
    for error in errors[:5]:
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        message = error.get("msg") or error.get("type", "invalid")
        if error.get("type") == "json_invalid":
            location, message = "body", "is not valid JSON"
        parts.append(f"{location or 'body'}: {message}")
    return "; ".join(parts) or "the request is not valid"


def create_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.exception_handler(BillingError)
    def handle_billing_error(error: BillingError) -> Response[str]:
        if error.status >= 500:
            logger.warning("request failed", extra={"code": error.code})
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    def handle_invalid_request(error: RequestValidationError) -> Response[str]:
        return error_response(InvalidRequest(describe_validation_errors(error.errors())))

    @app.exception_handler(UnicodeDecodeError)
    def handle_undecodable_body(_: UnicodeDecodeError) -> Response[str]:
        # API Gateway base64-encodes a body that is not UTF-8; Powertools' decoded_body
        # raises on it. That is the client's input, not our failure.
        return error_response(InvalidRequest("the request body is not UTF-8 JSON"))

    @app.exception_handler(RequestUnsupportedContentType)
    def handle_unsupported_content_type(_: RequestUnsupportedContentType) -> Response[str]:
        return error_response(InvalidRequest("Content-Type must be application/json"))

    @app.exception_handler(RecursionError)
    def handle_too_deep(_: RecursionError) -> Response[str]:
        # json.loads recurses once per nesting level: a hostile body can exhaust the stack.
        return error_response(InvalidRequest("the request body is nested too deeply"))

    @app.exception_handler(binascii.Error)
    def handle_bad_base64(_: binascii.Error) -> Response[str]:
        return error_response(InvalidRequest("the request body is not valid base64"))

    @app.exception_handler(NotFoundError)
    def handle_not_found(_: NotFoundError) -> Response[str]:
        return error_response(NotFound("no such route"))

    @app.exception_handler(Exception)
    def handle_unexpected(_: Exception) -> Response[str]:
        logger.exception("unhandled error")
        error = BillingError("an internal error occurred; it has been logged")
        return error_response(error)

    return app
