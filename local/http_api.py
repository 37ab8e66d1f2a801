"""The template's HTTP API on the dev server: each request matched to its route, checked by
the route's JWT authorizer as API Gateway checks it (the development identity's RS256
tokens, `local.identity`), and handed to the route's function as the payload format 2.0
event API Gateway sends (`local.apigw`)."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import jwt

from local import identity
from local.apigw import (
    INTERNAL_SERVER_ERROR,
    JSON_HEADERS,
    NOT_FOUND,
    HttpResponse,
    http_api_event,
    http_api_response,
)
from local.lambda_runtime import LocalFunction
from local.template import HttpRoute
from token_billing.edge.socket_auth import TokenVerifier

UNAUTHORIZED = HttpResponse(401, JSON_HEADERS, b'{"message":"Unauthorized"}')


class LocalHttpApi:
    """The HTTP API's routes, each answered by its function as API Gateway answers it."""

    def __init__(
        self,
        routes: list[HttpRoute],
        functions: Mapping[str, LocalFunction],
        verifier: TokenVerifier | None = None,
    ) -> None:
        self.routes = routes
        self.functions = functions
        self.verifier = verifier or identity.verifier()
        # First path segments of the API's routes ("/api/", "/webhooks/"): never web pages.
        self.path_prefixes = tuple(
            sorted({"/" + route.path.strip("/").split("/", 1)[0] + "/" for route in routes})
        )

    def owns(self, path: str) -> bool:
        """Whether `path` lies under the API's routes (it may still match none: a 404)."""
        return (path + "/").startswith(self.path_prefixes)

    def serve(
        self,
        method: str,
        path: str,
        *,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
        protocol: str,
    ) -> HttpResponse:
        """One HTTP API request: route it, invoke its function, answer as API Gateway does."""
        for route in self.routes:
            parameters = route.match(method, path)
            if parameters is not None:
                break
        else:
            return NOT_FOUND
        authorizer = None
        if route.authorized:
            authorizer = verify_bearer(headers, self.verifier)
            if authorizer is None:
                return UNAUTHORIZED
        event = http_api_event(
            method,
            path,
            route_key=route.route_key,
            path_parameters={name: unquote(value) for name, value in parameters.items()},
            headers=headers,
            raw_query_string=query,
            body=body,
            source_ip=source_ip,
            protocol=protocol,
            authorizer=authorizer,
        )
        try:
            return http_api_response(self.functions[route.function].invoke(event))
        except Exception:
            traceback.print_exc()
            return INTERNAL_SERVER_ERROR


def verify_bearer(headers: list[tuple[str, str]], verifier: TokenVerifier) -> dict[str, Any] | None:
    """The JWT authorizer's context for a token API Gateway would accept, else None (401).
    Its identity source is the Authorization header: the token alone, or after "Bearer "."""
    value = next((v for k, v in headers if k.lower() == "authorization"), "").strip()
    scheme, _, rest = value.partition(" ")
    token = rest.strip() if scheme.lower() == "bearer" else value
    if not token:
        _refused("no bearer token in the Authorization header")
        return None
    try:
        return identity.authorizer_context(verifier.claims(token))
    except jwt.PyJWTError as error:
        _refused(f"{type(error).__name__}: {error}")
        return None


def _refused(reason: str) -> None:
    """Why the JWT authorizer said 401, in the server's log only: API Gateway's answer
    names no reason, and neither does ours."""
    print(f"JWT authorizer: 401, {reason}", file=sys.stderr, flush=True)
