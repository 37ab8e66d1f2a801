"""The dev server's own pages, which no deployment has: the offline checkout pages, the
development sign-in, the JWKS of its tokens and the VM agent credential mint."""

from __future__ import annotations

import ipaddress
import json
import re

from local.apigw import JSON_HEADERS, HttpResponse

CHECKOUT_PAGE = re.compile(r"^/_local/checkout/(?P<id>[\w-]+)(?:/(?P<action>pay|cancel))?$")
SIGN_IN_PATH = "/_local/identity/token"
AGENT_CREDENTIAL_PATH = "/_local/agent-credential"
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def api_error(status: int, code: str, message: str) -> HttpResponse:
    """The API's one error shape, for the dev server's own endpoints."""
    body = {"error": {"code": code, "message": message, "retryable": False}}
    return HttpResponse(status, JSON_HEADERS, json.dumps(body).encode())


def is_loopback(host: str) -> bool:
    """Whether `host` (an address the server binds) only accepts this machine's clients."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
