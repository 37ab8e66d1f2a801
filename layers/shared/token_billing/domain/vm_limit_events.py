"""`VmLimitReached` on EventBridge, once per VM and UTC day (issue 25).

The debit function marks a limited VM's day counter the first time a write is refused
against it that day (a conditional update: once across containers); the ledger stream sees
that first mark and puts one event. Like `TokenBalanceLow`, put-then-note: the event is put
unless the counter says it was, then the counter notes it, so a crash between the two can
only put it again on the retry, with the same stable `id` (`vm-limit:<customer>:<vm>:<day>`)
that consumers drop duplicates by.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, Protocol

from token_billing.core.clock import utc_now_iso
from token_billing.core.units import format_tokens
from token_billing.domain.account_changes import EVENT_SOURCE
from token_billing.integrations.eventbridge import (
    EventsClient,
    event_bus_name,
    events_client,
    put_event,
)
from token_billing.store.stream_images import VmLimitReachedMark

VM_LIMIT_DETAIL_TYPE = "VmLimitReached"


class EventNotes(Protocol):
    def limit_event_put(self, customer_id: str, vm_id: str, day: str) -> bool: ...

    def mark_limit_event_put(self, customer_id: str, vm_id: str, day: str, at: str) -> None: ...


def event_id(mark: VmLimitReachedMark) -> str:
    """Stable across redeliveries: one VM, one day."""
    return f"vm-limit:{mark.customer_id}:{mark.vm_id}:{mark.day}"


def event_detail(mark: VmLimitReachedMark) -> dict[str, Any]:
    """The event's detail; token amounts as exact decimal strings beside milli-tokens."""
    resets = date.fromisoformat(mark.day) + timedelta(days=1)
    return {
        "id": event_id(mark),
        "customer_id": mark.customer_id,
        "vm_id": mark.vm_id,
        "day": mark.day,
        "limit": format_tokens(mark.limit_mt),
        "limit_mt": mark.limit_mt,
        "spent_today": format_tokens(mark.spent_mt),
        "spent_today_mt": mark.spent_mt,
        "reached_at": mark.reached_at,
        "resets_at": f"{resets.isoformat()}T00:00:00Z",
    }


class VmLimitAlerts:
    """Puts `VmLimitReached` once per VM and day, noted on the VM's day counter."""

    def __init__(
        self,
        notes: EventNotes,
        *,
        events: Callable[[], EventsClient] = events_client,
        bus_name: Callable[[], str] = event_bus_name,
        clock: Callable[[], str] = utc_now_iso,
    ) -> None:
        self._notes = notes
        self._events = events
        self._bus_name = bus_name
        self._clock = clock

    def notify(self, mark: VmLimitReachedMark) -> bool:
        """Put the event unless the counter says it was: True when put now. Costs per VM and
        day: 1 GetItem, 1 PutEvents entry, 1 UpdateItem; a redelivery the GetItem only."""
        if self._notes.limit_event_put(mark.customer_id, mark.vm_id, mark.day):
            return False
        put_event(
            self._events(),
            bus_name=self._bus_name(),
            source=EVENT_SOURCE,
            detail_type=VM_LIMIT_DETAIL_TYPE,
            detail=event_detail(mark),
            event_id=event_id(mark),
        )
        self._notes.mark_limit_event_put(mark.customer_id, mark.vm_id, mark.day, self._clock())
        return True
