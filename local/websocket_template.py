"""The template's WebSocket API, as the local socket serves it: which function (or which
MOCK integration's response) answers each route, which function authorizes `$connect`, and
the stage's throttle of each route."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from local.template import Template

_FUNCTION_ARN = re.compile(r"\$\{(\w+)\.Arn\}")


@dataclass(frozen=True)
class RouteThrottle:
    """A stage's throttle of one route: a token bucket every connection draws on."""

    rate_per_s: float
    burst: int


@dataclass(frozen=True)
class WebSocketApiSpec:
    """Which function serves each route key (or which mock answers it, and with what), the
    throttle of each route, and which function authorizes $connect."""

    routes: Mapping[str, str]  # route key -> function logical id
    authorizer: str | None  # function logical id of $connect's REQUEST authorizer
    mocks: Mapping[str, str] = field(default_factory=dict)  # route key -> response body
    throttles: Mapping[str, RouteThrottle] = field(default_factory=dict)


def _function_of(uri: Any) -> str:
    text = uri.get("Fn::Sub", "") if isinstance(uri, dict) else str(uri)
    found = _FUNCTION_ARN.search(text if isinstance(text, str) else "")
    if not found:
        raise ValueError(f"no function ARN in {uri!r}")
    return found.group(1)


def websocket_api(template: Template) -> WebSocketApiSpec | None:
    """The template's (one) WebSocket API, or None when it has none."""
    resources = template.resources
    apis = [
        name
        for name, resource in resources.items()
        if resource.get("Type") == "AWS::ApiGatewayV2::Api"
        and resource["Properties"].get("ProtocolType") == "WEBSOCKET"
    ]
    if not apis:
        return None
    (api,) = apis
    routes: dict[str, str] = {}
    mocks: dict[str, str] = {}
    authorizer = None
    for resource in _of_api(resources, "AWS::ApiGatewayV2::Route", api):
        properties = resource["Properties"]
        target = properties["Target"]
        target_text = target.get("Fn::Sub", "") if isinstance(target, dict) else str(target)
        integration = re.search(r"\$\{(\w+)\}", target_text)
        if not integration:
            raise ValueError(f"route {properties['RouteKey']}: target {target!r}")
        integration_id = integration.group(1)
        spec = resources[integration_id]["Properties"]
        if spec.get("IntegrationType") == "MOCK":
            mocks[properties["RouteKey"]] = _mock_response(resources, integration_id)
        else:
            routes[properties["RouteKey"]] = _function_of(spec["IntegrationUri"])
        if properties.get("AuthorizationType") == "CUSTOM":
            authorizer_id = properties["AuthorizerId"]["Ref"]
            authorizer = _function_of(resources[authorizer_id]["Properties"]["AuthorizerUri"])
    return WebSocketApiSpec(routes, authorizer, mocks, _route_throttles(resources, api))


def _of_api(resources: Mapping[str, Any], kind: str, api: str) -> list[Mapping[str, Any]]:
    return [
        resource
        for resource in resources.values()
        if resource.get("Type") == kind and resource["Properties"].get("ApiId") == {"Ref": api}
    ]


def _mock_response(resources: Mapping[str, Any], integration_id: str) -> str:
    """The body a MOCK integration answers with: its `$default` response template."""
    for resource in resources.values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::ApiGatewayV2::IntegrationResponse" and properties.get(
            "IntegrationId"
        ) == {"Ref": integration_id}:
            return str(properties["ResponseTemplates"]["$default"])
    raise ValueError(f"{integration_id}: a MOCK integration without an integration response")


def _route_throttles(resources: Mapping[str, Any], api: str) -> dict[str, RouteThrottle]:
    """Each route's throttle on the API's stage: its own RouteSettings, else the stage's."""
    throttles: dict[str, RouteThrottle] = {}
    for stage in _of_api(resources, "AWS::ApiGatewayV2::Stage", api):
        properties = stage["Properties"]
        settings = {"*": properties.get("DefaultRouteSettings", {})}
        settings |= properties.get("RouteSettings", {})
        for route, setting in settings.items():
            if "ThrottlingRateLimit" in setting:
                throttles[route] = RouteThrottle(
                    float(setting["ThrottlingRateLimit"]), int(setting["ThrottlingBurstLimit"])
                )
    return throttles
