"""An offline stand-in for the slice of Stripe's API this service uses, at the HTTP layer.

The purchase function talks to it through the official SDK, unchanged (only the SDK's
`api` base address points here), so `make dev` runs a whole checkout on one machine and
tests see the exact parameters the SDK sends. It also builds and signs events the way
Stripe does (HMAC-SHA256 over "<t>.<payload>") for the webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

API_VERSION = "2025-09-30.clover"
LOCAL_WEBHOOK_SECRET = "whsec_local_development_only"  # noqa: S105 - offline only
LOCAL_SECRET_KEY = "sk_test_local_offline"  # noqa: S105 - offline only
_INDEX = re.compile(r"\[([^\]]*)\]")


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        head = key.split("[", 1)[0]
        path: list[str] = [head, *_INDEX.findall(key[len(head) :])]
        node: Any = root
        for part, following in zip(path, [*path[1:], None], strict=True):
            last = following is None
            container_for_next: Any = [] if (following or "").isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if last:
                    node[index] = value
                elif node[index] is None:
                    node[index] = container_for_next
                node = node[index]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, container_for_next)
    return root


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header for `payload`, as Stripe computes it."""
    moment = int(time.time()) if timestamp is None else timestamp
    signed = f"{moment}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


def event_payload(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> bytes:
    """A Stripe event around `obj`, serialised as Stripe sends it."""
    event = {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    return json.dumps(event).encode()


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


@dataclass
class FakeStripe:
    """Checkout Sessions in memory, with Stripe's idempotency-key semantics."""

    public_base: str  # where the offline checkout page is served, e.g. http://127.0.0.1:3000
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _idempotent: dict[str, tuple[dict[str, Any], tuple[int, dict[str, Any]]]] = field(
        default_factory=dict
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: str
    ) -> tuple[int, dict[str, Any]]:
        """One API request (path below /v1); returns (status, JSON body)."""
        params = decode_form(body) if body else {}
        lowered = {name.lower(): value for name, value in headers.items()}
        with self._lock:
            self.requests.append(
                {
                    "method": method,
                    "path": path,
                    "params": params,
                    "idempotency_key": lowered.get("idempotency-key"),
                    "authorization": lowered.get("authorization", ""),
                }
            )
            if not lowered.get("authorization", "").startswith("Bearer sk_"):
                return 401, _error("invalid_request_error", "Invalid API Key provided")
            key = lowered.get("idempotency-key")
            if method == "POST" and key and key in self._idempotent:
                first_params, response = self._idempotent[key]
                if first_params != params:
                    return 400, _error(
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters",
                    )
                return response
            response = self._route(method, path, params)
            if method == "POST" and key:
                self._idempotent[key] = (params, response)
            return response

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "POST" and path == "/v1/checkout/sessions":
            return 200, self._create_session(params)
        found = re.fullmatch(r"/v1/checkout/sessions/([\w-]+)", path)
        if method == "GET" and found and found.group(1) in self.sessions:
            return 200, self.sessions[found.group(1)]
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method} {path})")

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        session_id = "cs_test_" + secrets.token_hex(16)
        amount = 0
        currency = None
        for line in params.get("line_items", []):
            price_data = line.get("price_data") or {}
            amount += _int(price_data.get("unit_amount")) * _int(line.get("quantity") or 1)
            currency = price_data.get("currency", currency)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": int(time.time()),
            "currency": currency,
            "expires_at": _int(params.get("expires_at")) or int(time.time()) + 86_400,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "mode": params.get("mode"),
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "url": f"{self.public_base}/_local/checkout/{session_id}",
        }
        self.sessions[session_id] = session
        return session

    def pay(self, session_id: str) -> dict[str, Any]:
        """What paying on Stripe's page does to a session: complete and paid."""
        with self._lock:
            session = self.sessions[session_id]
            if session["status"] == "open":
                session.update(
                    status="complete",
                    payment_status="paid",
                    payment_intent="pi_local_" + secrets.token_hex(12),
                )
            return dict(session)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}
