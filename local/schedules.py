"""The template's scheduled functions, run by the dev server on their own rate.

Only `rate(N minute(s)|hour(s)|day(s))` expressions: the template uses nothing else, and a
cron stand-in that is wrong would be worse than a clear error.
"""

from __future__ import annotations

import re
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local.template import Template

RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
UNIT_S = {"minute": 60, "hour": 3600, "day": 86_400}


@dataclass(frozen=True)
class Schedule:
    function: str
    every_s: int


def schedules(template: Template) -> list[Schedule]:
    found = []
    for spec in template.functions().values():
        for event in spec.events.values():
            if event.get("Type") not in ("Schedule", "ScheduleV2"):
                continue
            expression = event["Properties"]["ScheduleExpression"]
            match = RATE.match(expression)
            if not match:
                raise ValueError(
                    f"{spec.logical_id}: the dev server runs only rate(), not {expression}"
                )
            unit_s = UNIT_S[match.group(2).removesuffix("s")]
            found.append(Schedule(spec.logical_id, int(match.group(1)) * unit_s))
    return found


def scheduled_event(schedule: Schedule) -> dict[str, Any]:
    """The event EventBridge Scheduler sends a Lambda target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [
            f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{schedule.function}"
        ],
        "detail": "{}",
    }


class ScheduleRunner:
    """Invokes one function every `every_s` seconds on a daemon thread until stopped."""

    def __init__(self, schedule: Schedule, invoke: Callable[[Any], Any]) -> None:
        self.schedule = schedule
        self._invoke = invoke
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=schedule.function)

    def start(self) -> ScheduleRunner:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.schedule.every_s):
            try:
                self._invoke(scheduled_event(self.schedule))
            except Exception:
                traceback.print_exc()
