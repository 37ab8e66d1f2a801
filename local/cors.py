"""CORS on the dev server, as the HTTP API's `CorsConfiguration` in template.yaml answers it.

API Gateway answers a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
itself, before any authorizer or route, and adds `Access-Control-Allow-Origin` (and the
exposed headers) to the replies of requests whose `Origin` it allows. Locally the allowed
origins are the web apps a developer runs on this machine (a Next.js or Vite dev server on
another port); methods, headers and max age come from the template, so nothing drifts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from local.apigw import HttpResponse
from local.template import load_template

ORIGINS_ENV = "DEVSERVER_CORS_ORIGINS"
# The ports local web apps start on: Next.js (3000, then 3001 when 3000 is taken, by this
# server), Vite's dev server (5173) and `vite preview` (4173).
DEFAULT_PORTS = (3000, 3001, 4173, 5173)
DEFAULT_ORIGINS = tuple(
    f"http://{host}:{port}" for host in ("localhost", "127.0.0.1") for port in DEFAULT_PORTS
)
MAX_ORIGINS = 50


def parse_origins(value: str) -> tuple[str, ...]:
    """`http://localhost:3001,https://app.test` -> its origins; ValueError on anything that is
    not a bare origin (a path, a wildcard: Checkout's allow-list takes exact origins)."""
    origins = []
    for raw in value.split(","):
        origin = raw.strip().rstrip("/")
        if not origin:
            continue
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or "*" in origin
            or parts.path
            or parts.query
            or parts.fragment
            or parts.username
        ):
            raise ValueError(f"not an origin (scheme://host[:port]): {raw.strip()!r}")
        origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        raise ValueError(f"at most {MAX_ORIGINS} origins")
    return tuple(dict.fromkeys(origins))


@dataclass(frozen=True)
class CorsRules:
    """What the deployed HTTP API's CORS configuration allows, with local origins."""

    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    max_age_s: int

    def allows(self, origin: str | None) -> bool:
        return origin is not None and origin in self.allow_origins

    @staticmethod
    def is_preflight(method: str, headers: dict[str, str]) -> bool:
        return (
            method == "OPTIONS"
            and "origin" in headers
            and ("access-control-request-method" in headers)
        )

    def preflight(self, origin: str | None) -> HttpResponse:
        """API Gateway's own answer to a preflight: 204, with the rules when the origin is
        allowed and without them (so the browser refuses) when it is not."""
        if not self.allows(origin):
            return HttpResponse(204, [("Vary", "Origin")])
        assert origin is not None
        return HttpResponse(
            204,
            [
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Allow-Methods", ",".join(self.allow_methods)),
                ("Access-Control-Allow-Headers", ",".join(self.allow_headers)),
                ("Access-Control-Max-Age", str(self.max_age_s)),
                ("Vary", "Origin"),
            ],
        )

    def add_headers(self, response: HttpResponse, origin: str | None) -> HttpResponse:
        """A reply with the CORS headers an allowed origin gets (any the function set are
        dropped: API Gateway ignores them too)."""
        kept = [
            (name, value)
            for name, value in response.headers
            if not name.lower().startswith("access-control-")
        ]
        if self.allows(origin):
            assert origin is not None
            kept.append(("Access-Control-Allow-Origin", origin))
            if self.expose_headers:
                kept.append(("Access-Control-Expose-Headers", ",".join(self.expose_headers)))
        kept.append(("Vary", "Origin"))
        return HttpResponse(response.status, kept, response.body)


@cache
def template_cors_configuration() -> dict[str, Any]:
    """The HttpApi's CorsConfiguration in the template: the branch used when the stack has a
    web app (the other one is AWS::NoValue)."""
    resources = load_template().raw["Resources"]
    api = next(
        resource
        for resource in resources.values()
        if resource.get("Type") == "AWS::Serverless::HttpApi"
    )
    configuration = api["Properties"]["CorsConfiguration"]
    if "Fn::If" in configuration:
        configuration = configuration["Fn::If"][1]
    assert isinstance(configuration, dict)
    return configuration


def rules_for(origins: tuple[str, ...]) -> CorsRules:
    """The template's methods, headers and max age, for these local origins."""
    configuration = template_cors_configuration()
    return CorsRules(
        allow_origins=origins,
        allow_methods=tuple(str(m).upper() for m in configuration.get("AllowMethods", [])),
        allow_headers=tuple(str(h).lower() for h in configuration.get("AllowHeaders", [])),
        expose_headers=tuple(str(h).lower() for h in configuration.get("ExposeHeaders", [])),
        max_age_s=int(configuration.get("MaxAge", 0)),
    )
