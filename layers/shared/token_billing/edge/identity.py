"""The caller of an HTTP API request, from the resolver's current event."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from token_billing.edge.access import Caller, authorize_customer, caller_from_jwt


def current_caller(app: APIGatewayHttpResolver) -> Caller:
    authorizer = app.current_event.request_context.authorizer
    claims = authorizer.jwt_claim if authorizer else None
    scopes = authorizer.jwt_scopes if authorizer else None
    return caller_from_jwt(claims, scopes)


def caller_for_customer(app: APIGatewayHttpResolver, customer_id: str) -> Caller:
    """The caller, if they may act on `customer_id` (401 without a token, 403 otherwise)."""
    caller = current_caller(app)
    authorize_customer(caller, customer_id)
    return caller
