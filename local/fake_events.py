"""An offline EventBridge that answers `PutEvents` (AWS JSON 1.1), for the dev server.

The stream function puts its events through boto3's unchanged `events` client; the dev
server sets AWS_ENDPOINT_URL_EVENTBRIDGE to itself, so they land here. Each accepted entry
is printed, kept in memory (tests read `entries`) and appended, exactly as sent, as one JSON
line to a log file (`.local/events.jsonl` under `make dev`).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

PUT_EVENTS_TARGET = "AWSEvents.PutEvents"
TARGET_PREFIX = "AWSEvents."
MAX_ENTRIES = 10  # EventBridge's limit per PutEvents request
REQUIRED = ("Source", "DetailType", "Detail")


def _error(error_type: str, message: str) -> tuple[int, dict[str, Any]]:
    return 400, {"__type": error_type, "message": message}


def _entry_error(entry: Any) -> dict[str, str] | None:
    """EventBridge refuses an entry, not the request, for a missing field or bad Detail."""
    if not isinstance(entry, dict):
        return {"ErrorCode": "InvalidArgument", "ErrorMessage": "An entry must be an object."}
    for name in REQUIRED:
        if not isinstance(entry.get(name), str) or not entry[name]:
            return {
                "ErrorCode": "InvalidArgument",
                "ErrorMessage": f"Parameter {name} is not valid. Reason: {name} is required.",
            }
    try:
        json.loads(entry["Detail"])
    except ValueError:
        return {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    return None


class FakeEventBridge:
    """Records what PutEvents receives; thread-safe, since the dev server is threaded."""

    def __init__(self, log_path: Path | None = None, *, echo: bool = True) -> None:
        self.log_path = log_path
        self.echo = echo
        self.entries: list[dict[str, Any]] = []
        self._refusals: list[str] = []
        self._lock = threading.Lock()

    def refuse_next(self, count: int, error_code: str = "InternalFailure") -> None:
        """Fail the next `count` valid entries the way EventBridge reports a partial failure
        (HTTP 200, `FailedEntryCount` > 0), so a caller's handling of it can be exercised."""
        with self._lock:
            self._refusals.extend([error_code] * count)

    def handle(self, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Status and JSON reply of one AWS JSON 1.1 request."""
        if target != PUT_EVENTS_TARGET:
            operation = target.removeprefix(TARGET_PREFIX)
            return _error("UnknownOperationException", f"{operation} is not served locally")
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return _error("SerializationException", "the request body is not JSON")
        entries = request.get("Entries") if isinstance(request, dict) else None
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ENTRIES:
            return _error(
                "ValidationException",
                f"Entries must hold between 1 and {MAX_ENTRIES} entries",
            )
        results: list[dict[str, str]] = []
        for entry in entries:
            refused = _entry_error(entry) or self._take_refusal()
            if refused:
                results.append(refused)
                continue
            results.append({"EventId": str(uuid.uuid4())})
            self._record(entry)
        failed = sum("ErrorCode" in result for result in results)
        return 200, {"FailedEntryCount": failed, "Entries": results}

    def _take_refusal(self) -> dict[str, str] | None:
        with self._lock:
            if not self._refusals:
                return None
            code = self._refusals.pop(0)
        return {"ErrorCode": code, "ErrorMessage": "refused by the local EventBridge on request"}

    def _record(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":"))
        with self._lock:
            self.entries.append(entry)
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                with self.log_path.open("a") as log:
                    log.write(line + "\n")
        if self.echo:
            bus = entry.get("EventBusName", "default")
            print(
                f"{time.strftime('%H:%M:%S')} EventBridge {bus}: {entry['Source']} "
                f"{entry['DetailType']} {entry['Detail']}",
                file=sys.stderr,
                flush=True,
            )

    def snapshot(self) -> list[dict[str, Any]]:
        """A copy of the entries received so far, safe to read while requests arrive."""
        with self._lock:
            return list(self.entries)
