"""The response headers CloudFront sends with the hosted web app (DeployWebApp=true), read
from the template's response headers policy, with the stack's endpoints filled in for this
machine the way `make publish-web` fills config.json from the stack's outputs.

The template names the deployed endpoints (`https://*.execute-api...`, `wss://<socket
api>...`). Each connect-src source that lets the deployed app reach the API (output
ApiUrl) or the socket (output WebSocketUrl) becomes the dev server's origin of that
endpoint; a source that would not reach a deployed endpoint reaches nothing here either. So
a CSP that blocks the live balance in AWS blocks it in the browser e2e.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from local.intrinsics import LocalNames, local_parameters
from local.template import Template

# A source expression (CSP3): a scheme-source (`https:`) or a host-source.
SCHEME_SOURCE = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*):$", re.IGNORECASE)
HOST_SOURCE = re.compile(
    r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<host>\*|(?:\*\.)?[a-z0-9.-]+)"
    r"(?::(?P<port>\d+|\*))?(?P<path>/.*)?$",
    re.IGNORECASE,
)
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# CSP3's scheme-part match: an expression's scheme also allows these (more secure) ones.
SCHEME_ALSO_ALLOWS = {"http": {"https"}, "ws": {"wss", "http", "https"}, "wss": {"https"}}
HOSTED_APP_SCHEME = "https"  # CloudFront's origin, what a source without a scheme means


def scheme_matches(expression_scheme: str, url_scheme: str) -> bool:
    a, b = expression_scheme.lower(), url_scheme.lower()
    return a == b or b in SCHEME_ALSO_ALLOWS.get(a, set())


def source_allows(expression: str, url: str) -> bool:
    """Whether one CSP source expression lets the hosted app connect to `url` (keywords
    such as 'self' never name another origin)."""
    target = urlsplit(url)
    scheme_only = SCHEME_SOURCE.match(expression)
    if scheme_only:
        return scheme_matches(scheme_only["scheme"], target.scheme)
    found = HOST_SOURCE.match(expression)
    if expression.startswith("'") or not found:
        return False
    if not scheme_matches(found["scheme"] or HOSTED_APP_SCHEME, target.scheme):
        return False
    host, wanted = found["host"].lower(), (target.hostname or "").lower()
    if host.startswith("*."):
        if not wanted.endswith(host[1:]):
            return False
    elif host not in ("*", wanted):
        return False
    port = target.port or DEFAULT_PORTS.get(target.scheme)
    if found["port"] is None:
        return port == DEFAULT_PORTS.get(target.scheme)
    return found["port"] == "*" or int(found["port"]) == port


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def localized_csp(policy: str, endpoints: Mapping[str, str]) -> str:
    """`policy` with each connect-src source that reaches a deployed endpoint (a key of
    `endpoints`) replaced by that endpoint's local origin (its value). Without connect-src,
    default-src governs connections and is filled in instead."""
    directives = [part.split() for part in policy.split(";") if part.strip()]
    names = [directive[0].lower() for directive in directives]
    governing = "connect-src" if "connect-src" in names else "default-src"
    filled = []
    for name, *sources in directives:
        if name.lower() == governing:
            localized: list[str] = []
            for source in sources:
                reached = [
                    origin(local)
                    for deployed, local in endpoints.items()
                    if source_allows(source, deployed)
                ]
                localized.extend(reached or [source])
            sources = list(dict.fromkeys(localized))
        filled.append(" ".join([name, *sources]))
    return "; ".join(filled)


def deployed_endpoints(names: LocalNames, template: Template) -> dict[str, str]:
    """The API's and the socket's URLs as the stack's outputs name them (what publish-web
    writes into config.json), by output: ApiUrl, WebSocketUrl."""
    outputs = template.raw["Outputs"]
    return {name: str(names.resolve(outputs[name]["Value"])) for name in ("ApiUrl", "WebSocketUrl")}


def security_headers(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """CloudFront's headers for a policy's SecurityHeadersConfig (CSP aside)."""
    headers = []
    for key, setting in config.items():
        if key == "ContentSecurityPolicy":
            continue
        if key == "StrictTransportSecurity":
            value = f"max-age={setting['AccessControlMaxAgeSec']}"
            value += "; includeSubDomains" if setting.get("IncludeSubdomains") else ""
            value += "; preload" if setting.get("Preload") else ""
            headers.append(("Strict-Transport-Security", value))
        elif key == "ContentTypeOptions":
            headers.append(("X-Content-Type-Options", "nosniff"))
        elif key == "FrameOptions":
            headers.append(("X-Frame-Options", setting["FrameOption"]))
        elif key == "ReferrerPolicy":
            headers.append(("Referrer-Policy", setting["ReferrerPolicy"]))
        else:
            raise NotImplementedError(f"SecurityHeadersConfig.{key} (local/web_headers.py)")
    return headers


def hosted_app_headers(template: Template, api_url: str, socket_url: str) -> list[tuple[str, str]]:
    """Every header the template's CloudFront policy adds to the web app's responses, its
    CSP filled in with the local API (`api_url`) and socket (`socket_url`)."""
    names = LocalNames(template, {**local_parameters(template), "DeployWebApp": "true"})
    distribution = template.resources["WebDistribution"]["Properties"]["DistributionConfig"]
    policy_id = distribution["DefaultCacheBehavior"]["ResponseHeadersPolicyId"]["Ref"]
    config = names.resolve(template.resources[policy_id]["Properties"])[
        "ResponseHeadersPolicyConfig"
    ]
    unknown = set(config) - {"Name", "Comment", "SecurityHeadersConfig", "CustomHeadersConfig"}
    if unknown:
        raise NotImplementedError(
            f"ResponseHeadersPolicyConfig {sorted(unknown)} (local/web_headers.py)"
        )
    security = config["SecurityHeadersConfig"]
    deployed = deployed_endpoints(names, template)
    csp = localized_csp(
        security["ContentSecurityPolicy"]["ContentSecurityPolicy"],
        {deployed["ApiUrl"]: api_url, deployed["WebSocketUrl"]: socket_url},
    )
    headers = [("Content-Security-Policy", csp), *security_headers(security)]
    for item in config.get("CustomHeadersConfig", {}).get("Items", []):
        headers.append((item["Header"], item["Value"]))
    return headers
