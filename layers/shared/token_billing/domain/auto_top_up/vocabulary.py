"""What the auto top-up steps share: the order kinds, the event source, the limits."""

from __future__ import annotations

KIND = "auto_top_up"
RECOVERY_KIND = "auto_top_up_recovery"
EVENT_SOURCE = "token-billing"
DEFAULT_MAX_CHARGES_PER_DAY = 2
MAX_PACKS_PER_ATTEMPT = 10
FAILURES_BEFORE_PAUSE = 3
