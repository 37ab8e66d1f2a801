"""Stripe's wire format, for the offline Stripe and the tests: its form encoding of request
parameters, its event envelope, and its webhook signature (HMAC-SHA256 over
"<t>.<payload>")."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

API_VERSION = "2025-09-30.clover"
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
