"""A VM's runtime paid ahead: a hold at start, a renew per period with the minutes used,
a settle at the end. Every call goes through the meter's spool, so it survives crashes and
is retried like a debit; the session itself only decides what to send next.
"""

from __future__ import annotations

import logging
import threading
import time
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import TYPE_CHECKING

from . import protocol
from .actions import VM_RUNTIME
from .protocol import Outcome, Verdict
from .spool import Batch, NewBatch

if TYPE_CHECKING:
    from .meter import Meter

logger = logging.getLogger("token_meter")

MILLI = Decimal("0.001")
_MEASURE = Context(prec=34)
# When a period ends while the previous hold or renew is still unanswered, look again this
# soon: the next renew must name the hold that is actually in force.
RECHECK_S = 1.0


def minutes_between(started: float, now: float) -> Decimal:
    """Elapsed monotonic seconds as Decimal minutes, rounded half up to 3 decimals."""
    seconds = Decimal(repr(max(0.0, now - started)))
    return _MEASURE.divide(seconds, Decimal(60)).quantize(MILLI, rounding=ROUND_HALF_UP)


class VmSession:
    """One VM's hold chain. Created by `Meter.vm_session`; read `hold_id`, `exhausted` and
    `grace_until` to see where it stands.

    Usage is measured as total minutes since start (rounded to 3 decimals) minus what was
    already billed, so rounding never accumulates over a long session.
    """

    def __init__(self, meter: Meter, vm_id: str, hold_minutes: int, period_s: float) -> None:
        self.meter = meter
        self.vm_id = vm_id
        self.hold_minutes = hold_minutes
        self.period_s = period_s
        self.hold_id: str | None = None  # the hold believed in force (or being placed)
        self.exhausted = False
        self.grace_until: str | None = None
        self.due = time.monotonic() + period_s  # next renew, read by the meter's thread
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._inflight: str | None = None  # spool key of the hold/renew awaiting its answer
        self._next_hold_id: str | None = None
        self._grace = False  # the hold in force was not renewed: settle it, never renew it
        self._started = meter.clock()
        self._billed = Decimal(0)
        self._finished = False

    # ---- called by the meter -------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            self._place_hold()

    def tick(self, now: float) -> None:
        """A period ended: renew the hold with the minutes used since the last renew."""
        with self._lock:
            if self._finished:
                return
            if self._inflight is not None:
                self.due = now + min(RECHECK_S, self.period_s)
                return
            total, minutes = self._measure()
            if self.hold_id is None:
                # No hold in force (refused earlier): bill the minutes as a plain debit, and
                # try a hold again in case the customer topped up.
                if minutes > 0:
                    self.meter.record(VM_RUNTIME, minutes, self.vm_id)
                self._billed = total
                self._place_hold()
            elif self._grace:
                # The last renew said `renewed: false`: the old hold cannot be renewed again
                # (its renew is taken), so settle it with the minutes so far and go on
                # without a hold, trying a new one in case the customer topped up.
                self._settle_or_release(minutes)
                self._billed = total
                self.hold_id = None
                self._grace = False
                self._place_hold()
            elif minutes > 0:
                next_hold_id = protocol.new_key(self.meter.customer_id, "hold")
                usage = protocol.vm_runtime_usage(minutes, self.vm_id)
                payload = protocol.renew_payload(
                    self.meter.customer_id,
                    self.hold_id,
                    next_hold_id,
                    self.hold_minutes,
                    usage,
                    self.vm_id,
                )
                self._next_hold_id = next_hold_id
                self._spool(
                    NewBatch(next_hold_id, "renew", self.meter.customer_id, payload, len(usage))
                )
                self._billed = total
            else:  # a renew needs usage: look again once a thousandth of a minute passed
                self.due = now + min(RECHECK_S, self.period_s)
                return
            self.due = now + self.period_s

    def finish(self, wait_s: float) -> None:
        """Settle the minutes not billed yet and end the chain (release when there are none).

        Waits up to `wait_s` for an unanswered hold or renew, so the settle names the hold
        in force; after that it settles the last known hold, which the service bills as a
        plain debit (`late`) if that hold was already renewed away.
        """
        with self._lock:
            if self._finished:
                return
            self._finished = True
            deadline = time.monotonic() + wait_s
            while self._inflight is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    logger.warning(
                        "vm %s: %s still unanswered; settling hold %s",
                        self.vm_id,
                        self._inflight,
                        self.hold_id,
                    )
                    break
                self._answered.wait(remaining)
            total, minutes = self._measure()
            if self.hold_id is None:
                if minutes > 0:
                    self.meter.record(VM_RUNTIME, minutes, self.vm_id)
            else:
                self._settle_or_release(minutes)
            self._billed = total

    def on_answer(self, batch: Batch, outcome: Outcome) -> None:
        """The sender's final answer to one of this session's batches (sender thread)."""
        notify: tuple[str, str | None] | None = None
        with self._lock:
            if batch.key != self._inflight:
                return
            self._inflight = None
            reply = outcome.reply or {}
            if batch.op == "hold":
                if outcome.ok:
                    self.exhausted = False
                    self.grace_until = None
                else:
                    self.hold_id = None
                    if outcome.verdict is Verdict.REFUSED:
                        notify = self._exhaust(None)
                    else:
                        logger.error("vm %s: hold not placed: %s", self.vm_id, outcome.message)
            elif batch.op == "renew":
                if outcome.ok and reply.get("renewed") is True:
                    self.hold_id = self._next_hold_id
                    self.exhausted = False
                    self.grace_until = None
                elif outcome.ok:
                    # Not renewed: the usage was billed and the old hold stays until
                    # grace_until, to be settled (not renewed) at the next period or exit.
                    self._grace = True
                    grace = reply.get("grace_until")
                    notify = self._exhaust(grace if isinstance(grace, str) else None)
                else:
                    # Refused (the old hold had lapsed and the minutes were not covered),
                    # hold_not_found (the meter re-spools the minutes as a debit) or
                    # invalid: either way no hold is in force any more.
                    self.hold_id = None
                    if outcome.verdict is Verdict.REFUSED:
                        notify = self._exhaust(None)
                    else:
                        logger.error("vm %s: renew failed: %s", self.vm_id, outcome.message)
            self._answered.notify_all()
        if notify is not None:
            self.meter.notify_exhausted(*notify)

    # ---- internals (under self._lock) ----------------------------------------------------

    def _exhaust(self, grace_until: str | None) -> tuple[str, str | None] | None:
        """Enter an exhaustion episode; the callback fires only on entry."""
        self.grace_until = grace_until
        if self.exhausted:
            return None
        self.exhausted = True
        return (self.vm_id, grace_until)

    def _settle_or_release(self, minutes: Decimal) -> None:
        """End the hold in force: settle the minutes, or release it when there are none."""
        assert self.hold_id is not None
        customer_id = self.meter.customer_id
        if minutes > 0:
            usage = protocol.vm_runtime_usage(minutes, self.vm_id)
            payload = protocol.settle_payload(customer_id, self.hold_id, usage)
            self._spool(NewBatch(f"{self.hold_id}.settle", "settle", customer_id, payload, 1))
        else:
            payload = protocol.release_payload(customer_id, self.hold_id)
            self._spool(NewBatch(f"{self.hold_id}.release", "release", customer_id, payload, 0))

    def _measure(self) -> tuple[Decimal, Decimal]:
        """(minutes since start, minutes not billed yet); the caller commits the total to
        self._billed once the usage is spooled, so a failed spool write bills it later."""
        total = minutes_between(self._started, self.meter.clock())
        return total, total - self._billed

    def _place_hold(self) -> None:
        hold_id = protocol.new_key(self.meter.customer_id, "hold")
        payload = protocol.hold_payload(
            self.meter.customer_id, hold_id, self.hold_minutes, self.vm_id
        )
        self._spool(NewBatch(hold_id, "hold", self.meter.customer_id, payload, 0))
        self.hold_id = hold_id  # under self._lock: its answer cannot overtake this line

    def _spool(self, batch: NewBatch) -> None:
        awaits_answer = batch.op in ("hold", "renew")
        if awaits_answer:
            self._inflight = batch.key
        try:
            self.meter.spool_batch(batch, listener=self if awaits_answer else None)
        except BaseException:
            if awaits_answer:
                self._inflight = None
            raise
