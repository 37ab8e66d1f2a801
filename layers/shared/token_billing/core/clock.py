"""The one way this service writes a moment: UTC, ISO 8601, microseconds, `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(moment: datetime) -> str:
    """A moment as the service writes it everywhere (sorts as text in time order)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def utc_now_iso() -> str:
    return iso_utc(datetime.now(UTC))
