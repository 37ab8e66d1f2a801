"""What a change of an ACCOUNT item means, read from its stream images, and what to do
about it. No I/O of its own: the effects go through the two interfaces it is given.

The ledger never writes usage aggregates or alerts on the debit path: every debit ADDs the
account's lifetime per-action counters (`used_<action>_mt`) and bumps `version` in its one
transaction, and the table's stream carries the item before and after. From those two images
alone this module derives

- the per-action usage the change added (new counters minus old ones), which the stream
  function folds into the day's aggregate under the account `version`, so a redelivered
  record is recognised and skipped; and
- whether the balance crossed below the low-balance line (`catalog.LOW_BALANCE_MT`), the
  trigger of one `TokenBalanceLow` event per crossing, keyed by the same `version`.

The images are decoded into an `AccountChange` by `store.stream_images`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from token_billing.core.units import format_tokens
from token_billing.domain.catalog import LOW_BALANCE_MT
from token_billing.store.stream_images import AccountChange

EVENT_SOURCE = "token-billing"
LOW_BALANCE_DETAIL_TYPE = "TokenBalanceLow"


@dataclass(frozen=True, slots=True)
class LowBalanceCrossing:
    """A balance that went from at least the low-balance line to below it in one write."""

    customer_id: str
    version: int
    balance_mt: int
    available_mt: int
    crossed_at: str
    threshold_mt: int = LOW_BALANCE_MT

    @property
    def event_id(self) -> str:
        """Stable across redeliveries and retries: a consumer drops an event it has seen."""
        return f"{self.customer_id}:{self.version}"

    def detail(self) -> dict[str, Any]:
        """The `TokenBalanceLow` event's detail; token amounts as exact decimal strings."""
        return {
            "id": self.event_id,
            "customer_id": self.customer_id,
            "balance": format_tokens(self.balance_mt),
            "balance_mt": self.balance_mt,
            "available": format_tokens(self.available_mt),
            "available_mt": self.available_mt,
            "threshold": format_tokens(self.threshold_mt),
            "threshold_mt": self.threshold_mt,
            "version": self.version,
            "crossed_at": self.crossed_at,
        }


def low_balance_crossing(
    change: AccountChange, threshold_mt: int = LOW_BALANCE_MT
) -> LowBalanceCrossing | None:
    """The crossing this change made, if it took *available* tokens (balance - held, as the
    dashboard warns) from >= threshold to below.

    Only a write that crosses counts: further debits below the line are no new crossing,
    and a top-up above the line followed by another debit below it is (a new version).
    """
    if change.old_available_mt is None:
        return None
    if not (change.old_available_mt >= threshold_mt > change.available_mt):
        return None
    return LowBalanceCrossing(
        customer_id=change.customer_id,
        version=change.version,
        balance_mt=change.balance_mt,
        available_mt=change.available_mt,
        crossed_at=change.updated_at,
        threshold_mt=threshold_mt,
    )


class AggregateStore(Protocol):
    """Where a change's usage goes (`usage_aggregates.UsageAggregates`)."""

    def apply_delta(
        self,
        *,
        customer_id: str,
        day: date,
        version: int,
        delta_mt: Mapping[str, int],
        updated_at: str,
    ) -> bool: ...


class CrossingNotifier(Protocol):
    """Who hears of a crossing (`low_balance.LowBalanceAlerts`)."""

    def notify(self, crossing: LowBalanceCrossing) -> bool: ...


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    """What processing one change did; a redelivery does nothing and says so."""

    aggregate_applied: bool = False
    aggregate_redelivered: bool = False
    alert_sent: bool = False
    alert_redelivered: bool = False

    @property
    def redelivered(self) -> bool:
        return self.aggregate_redelivered or self.alert_redelivered


def apply_account_change(
    change: AccountChange, *, aggregates: AggregateStore, alerts: CrossingNotifier
) -> ChangeOutcome:
    """The stream function's work for one change: the day's usage first, then the alert.

    Each step is idempotent on its own (version condition, marker), so when the alert
    fails after the aggregate applied, the retried record skips the aggregate and retries
    only the alert.
    """
    applied = redelivered = False
    if change.usage_delta_mt:
        applied = aggregates.apply_delta(
            customer_id=change.customer_id,
            day=change.day,
            version=change.version,
            delta_mt=change.usage_delta_mt,
            updated_at=change.updated_at,
        )
        redelivered = not applied
    crossing = low_balance_crossing(change)
    sent = alerts.notify(crossing) if crossing else False
    return ChangeOutcome(
        aggregate_applied=applied,
        aggregate_redelivered=redelivered,
        alert_sent=sent,
        alert_redelivered=crossing is not None and not sent,
    )
