"""What applying a verified Stripe event did, in one word and the order it concerned."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an event did: `action` is a stable word for logs, metrics and the reply."""

    action: str
    order_id: str | None = None
    detail: str | None = None
