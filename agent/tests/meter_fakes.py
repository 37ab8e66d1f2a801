"""Fakes the token meter's tests share: a scripted Lambda client and a stepping clock."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

WAIT_S = 5.0

Reply = dict[str, Any]
Responder = Callable[[dict[str, Any]], object]


def ok_reply(payload: dict[str, Any]) -> Reply:
    """What the service answers to a first, successful request of each op."""
    op = payload.get("op", "debit")
    if op == "hold":
        return {"ok": True, "hold_id": payload["hold_id"], "held": payload["amount"]}
    if op == "renew":
        return {
            "ok": True,
            "transaction_id": "t-" + payload["next_hold_id"],
            "renewed": True,
            "next_hold_id": payload["next_hold_id"],
            "expires_at": "2026-11-25T12:00:00Z",
            "late": False,
            "replayed": False,
        }
    if op in ("settle", "release"):
        return {"ok": True, "hold_id": payload["hold_id"], "late": False, "replayed": False}
    return {
        "ok": True,
        "transaction_id": "t-" + payload["idempotency_key"],
        "debited": "1",
        "debited_mt": 1000,
        "replayed": False,
    }


def error_reply(code: str, retryable: bool = False) -> Reply:
    return {"ok": False, "error": {"code": code, "message": code, "retryable": retryable}}


class FakeLambda:
    """Implements `invoke` like boto3's Lambda client. Each call takes the next scripted
    item (an exception to raise, a raw response with StatusCode, a reply dict, or a
    function of the payload), else answers with `responder`."""

    def __init__(self, responder: Responder = ok_reply) -> None:
        self.responder = responder
        self.script: deque[object] = deque()
        self.calls: list[bytes] = []
        self.lock = threading.Lock()

    def then(self, *items: object) -> FakeLambda:
        self.script.extend(items)
        return self

    @property
    def payloads(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(raw) for raw in self.calls]

    def invoke(self, *, FunctionName: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
        assert FunctionName
        with self.lock:
            self.calls.append(bytes(Payload))
            item = self.script.popleft() if self.script else self.responder
        payload = json.loads(Payload)
        if callable(item) and not isinstance(item, BaseException):
            item = item(payload)
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, dict)
        if "StatusCode" in item:
            return item
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(item).encode())}


class StepClock:
    """A monotonic clock that moves `step_s` every time it is read: each measurement a
    VM session takes is exactly one step later than the one before."""

    def __init__(self, step_s: float = 60.0) -> None:
        self.step_s = step_s
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            self.now += self.step_s
            return self.now


def wait_for(predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)
