"""The VM's agent credential: presented with every op, refreshed before it expires.

The platform's control plane mints one credential per VM, bound to (customer, vm_id,
expiry) (`python -m tools.agent_credential` in the service's repository). The meter never
writes it into the spool: a batch resent after a restart or a long outage carries the
credential current at that moment, not the one of its first attempt.

A `Credentials` holds either a fixed credential or a provider the meter calls for a fresh
one (an HTTP call to the control plane, a file the control plane rewrites, ...). It asks
the provider when the current one is within REFRESH_MARGIN of its expiry, or right away
after the service answered `credential_expired` / `credential_invalid`.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger("token_meter")

# Refresh once this share of the credential's life is left, or this many seconds at least.
REFRESH_SHARE = 0.2
REFRESH_MIN_S = 300.0
REFRESH_ERROR_CODES = frozenset({"credential_expired", "credential_invalid"})

Provider = Callable[[], str]


def credential_expiry_s(credential: str) -> float | None:
    """The expiry the credential claims (epoch seconds), read without verifying: only the
    service can verify it; the agent just needs to know when to ask for the next one."""
    parts = credential.split(".")
    if len(parts) != 4:
        return None
    try:
        body = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        claims = json.loads(body)
        return float(claims["exp"]) if isinstance(claims, dict) else None
    except (ValueError, KeyError, TypeError):
        return None


def file_provider(path: str | Path) -> Provider:
    """A provider that reads the credential from a file the control plane rewrites."""
    return lambda: Path(path).read_text().strip()


class Credentials:
    def __init__(self, source: str | Provider, *, now: Callable[[], float] = time.time) -> None:
        self._provider: Provider | None = None if isinstance(source, str) else source
        self._now = now
        self._lock = threading.Lock()
        self._current: str | None = source if isinstance(source, str) else None
        self._issued_at = now()
        self._stale = False

    def _due(self) -> bool:
        if self._current is None or self._stale:
            return True
        expiry = credential_expiry_s(self._current)
        if expiry is None:
            return False
        left = expiry - self._now()
        life = max(expiry - self._issued_at, 0.0)
        return left <= max(REFRESH_MIN_S, REFRESH_SHARE * life)

    def current(self) -> str | None:
        """The credential to send now, fetched from the provider when due. A provider that
        fails leaves the old one in use (the service says whether it still holds)."""
        with self._lock:
            if self._provider is not None and self._due():
                try:
                    fresh = self._provider().strip()
                except Exception as error:  # the control plane may be briefly away
                    logger.warning("could not refresh the agent credential: %s", error)
                else:
                    if fresh:
                        self._current, self._issued_at, self._stale = fresh, self._now(), False
            return self._current

    def refused(self, code: str | None) -> None:
        """The service refused the credential: fetch a new one before the next send."""
        if code in REFRESH_ERROR_CODES:
            with self._lock:
                self._stale = True
            if self._provider is None:
                logger.error("the agent credential was refused (%s) and cannot be refreshed", code)


def credentials_from_env() -> Credentials | None:
    """TOKEN_METER_CREDENTIAL_FILE (re-read on refresh) or TOKEN_METER_CREDENTIAL."""
    path = os.environ.get("TOKEN_METER_CREDENTIAL_FILE")
    if path:
        return Credentials(file_provider(path))
    fixed = os.environ.get("TOKEN_METER_CREDENTIAL")
    return Credentials(fixed) if fixed else None
