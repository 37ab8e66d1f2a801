"""The meter: `record()` sums usage in memory; a batcher thread cuts the sums into spooled
batches; a sender thread sends spooled batches one at a time, oldest first, retrying with
the same key and payload until the service gives a final answer.

When is a recorded line safe from a crash? `record()` only touches memory, so a line is
durable once the batch holding it is committed to the spool: at the next cut, which
happens every `flush_interval_s`, as soon as `max_lines` distinct lines are buffered, and
at the start of `flush()` / `close()` / exit. `flush(timeout_s=0)` makes everything recorded
so far durable without waiting for the service.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from botocore.config import Config

from . import protocol
from .actions import (
    MAX_BATCH_LINES,
    add_exact,
    parse_quantity,
    split_quantity,
    validate_action,
    validate_customer_id,
    validate_vm_id,
)
from .credentials import Credentials, Provider, credentials_from_env
from .protocol import USAGE_OPS, LambdaInvoker, Outcome, Verdict
from .session import VmSession
from .spool import Batch, LineKey, NewBatch, Spool, SpoolStatus, State

logger = logging.getLogger("token_meter")

OnExhausted = Callable[[str | None, str | None], None]

DEFAULT_FUNCTION = "DebitFunction"
DEFAULT_SPOOL = "~/.token-meter/spool.sqlite3"
RETRY_BASE_S = 0.2
RETRY_CAP_S = 30.0
CONNECT_TIMEOUT_S = 5
# The debit function's own timeout is 10 s; a reply later than this is treated as lost and
# the batch is resent with the same key (the service then answers with the first result).
READ_TIMEOUT_S = 30
IDLE_POLL_S = 2.0  # the sender also looks for batches other processes (the CLI) spooled
ERROR_PAUSE_S = 1.0  # after an unexpected error in a thread, before it carries on
SENT_RETENTION_S = 7 * 86_400
VERDICT_STATE = {
    Verdict.SENT: State.SENT,
    Verdict.REFUSED: State.REFUSED,
    Verdict.INVALID: State.INVALID,
    Verdict.FAILED: State.FAILED,
}


def default_spool_path() -> Path:
    return Path(os.environ.get("TOKEN_METER_SPOOL") or DEFAULT_SPOOL).expanduser()


def make_lambda_client(
    endpoint_url: str | None = None, config: Config | None = None
) -> LambdaInvoker:
    """A boto3 Lambda client with bounded timeouts and no botocore retries: the meter
    retries itself, with the same key, and must see every failure to do so.

    boto3 reads AWS_REGION and AWS_ENDPOINT_URL_LAMBDA from the environment as usual.
    """
    import boto3  # here, not at import: `token-meter record` never needs a client

    base = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": 1},  # max_attempts counts retries
        tcp_keepalive=True,
    )
    client: LambdaInvoker = boto3.client(
        "lambda",
        endpoint_url=endpoint_url,
        config=base.merge(config) if config is not None else base,
    )
    return client


class Meter:
    """Meters one customer's usage into the debit function, exactly once across crashes.

    `record` is thread-safe and never blocks on I/O. Use as a context manager, or call
    `close()`; an atexit hook closes it too.
    """

    def __init__(
        self,
        customer_id: str,
        function_name: str = DEFAULT_FUNCTION,
        spool_path: str | Path | None = None,
        flush_interval_s: float = 5.0,
        max_lines: int = MAX_BATCH_LINES,
        on_exhausted: OnExhausted | None = None,
        lambda_client: LambdaInvoker | None = None,
        *,
        endpoint_url: str | None = None,
        boto_config: Config | None = None,
        retry_base_s: float = RETRY_BASE_S,
        retry_cap_s: float = RETRY_CAP_S,
        close_timeout_s: float = 10.0,
        settle_wait_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        credential: str | Provider | Credentials | None = None,
    ) -> None:
        self.customer_id = validate_customer_id(customer_id)
        # The VM's agent credential (RequireAgentCredentials): a fixed one, or a provider the
        # meter asks for a fresh one before the current one expires.
        self.credentials = (
            credential
            if isinstance(credential, Credentials) or credential is None
            else Credentials(credential)
        )
        if not 1 <= max_lines <= MAX_BATCH_LINES:
            raise ValueError(f"max_lines must be between 1 and {MAX_BATCH_LINES}")
        if not flush_interval_s > 0:
            raise ValueError("flush_interval_s must be positive")
        if not 0 < retry_base_s <= retry_cap_s:
            raise ValueError("retry_base_s must be positive and at most retry_cap_s")
        self.function_name = function_name
        self.flush_interval_s = flush_interval_s
        self.max_lines = max_lines
        self.on_exhausted = on_exhausted
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        self.close_timeout_s = close_timeout_s
        self.settle_wait_s = settle_wait_s
        self.clock = clock  # measures VM runtime; injectable for tests
        self._rng = rng or random.Random()
        self._client = lambda_client or make_lambda_client(endpoint_url, boto_config)
        self.spool = Spool(spool_path if spool_path is not None else default_spool_path())
        resent = self.spool.reclaim_sending()
        if resent:
            logger.info("spool %s: %d interrupted sends will be resent", self.spool.path, resent)
        self.spool.prune_sent(SENT_RETENTION_S)

        self._lock = threading.Lock()  # guards the fields below; never held during I/O
        self._buffer: dict[LineKey, Decimal] = {}
        self._sessions: set[VmSession] = set()
        self._listeners: dict[str, VmSession] = {}
        self._exhausted = False
        self._closing = False  # close() has begun
        self._closed = False  # record() refuses lines: no cut would spool them
        self._drained_at_close = False

        self._stop = threading.Event()
        self._wake_batcher = threading.Event()
        self._wake_sender = threading.Event()
        self._progress = threading.Condition()  # notified after every answered attempt
        self._backoff: dict[str, tuple[int, float]] = {}  # key -> (failures, not before)
        self._batcher = threading.Thread(
            target=self._run, args=(self._batch_step,), name="token-meter-batcher", daemon=True
        )
        self._sender = threading.Thread(
            target=self._run, args=(self._send_step,), name="token-meter-sender", daemon=True
        )
        self._next_cut = time.monotonic() + flush_interval_s
        self._batcher.start()
        self._sender.start()
        atexit.register(self.close)

    @classmethod
    def from_env(cls, **overrides: Any) -> Meter:
        """A meter configured like the CLI: TOKEN_METER_CUSTOMER_ID, TOKEN_METER_FUNCTION,
        TOKEN_METER_SPOOL, TOKEN_METER_CREDENTIAL(_FILE) (and boto3's AWS_REGION /
        AWS_ENDPOINT_URL_LAMBDA)."""
        customer_id = os.environ.get("TOKEN_METER_CUSTOMER_ID", "")
        if not customer_id:
            raise ValueError("TOKEN_METER_CUSTOMER_ID is not set")
        function_name = os.environ.get("TOKEN_METER_FUNCTION") or DEFAULT_FUNCTION
        overrides.setdefault("function_name", function_name)
        overrides.setdefault("credential", credentials_from_env())
        return cls(customer_id, **overrides)

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- the public API ------------------------------------------------------------------

    def record(self, action: str, quantity: int | Decimal | str, vm_id: str | None = None) -> None:
        """Add usage; ValueError at once for an unknown action or a bad quantity or vm id.

        Only appends to memory under a lock: safe to call from any thread, any time.
        """
        line_key = (validate_action(action), validate_vm_id(vm_id))
        amount = parse_quantity(quantity)
        with self._lock:
            if self._closed:
                raise RuntimeError("the meter is closed")
            self._buffer[line_key] = add_exact(self._buffer.get(line_key), amount)
            full = len(self._buffer) >= self.max_lines
        if full:
            self._wake_batcher.set()

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Spool everything recorded so far, then wait up to `timeout_s` until nothing is
        left to send (refused, invalid and failed batches do not count).

        True when drained. `flush(0)` just makes the recorded lines durable.
        """
        if self._stop.is_set():
            raise RuntimeError("the meter is closed")
        return self._flush(timeout_s)

    def _flush(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        self._cut()
        self._wake_sender.set()
        if threading.current_thread() is self._sender:
            return False  # called from on_exhausted: waiting here would wait for itself
        with self._progress:
            while True:
                if self.spool.unfinished_count() == 0:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._sender.is_alive():
                    return False
                self._progress.wait(min(remaining, 0.5))

    def close(self, timeout_s: float | None = None) -> bool:
        """Settle open VM sessions, flush (bounded), stop the threads. Unsent batches stay in
        the spool and go out when a meter next opens it. True when everything was sent."""
        with self._lock:
            if self._closing:  # closed already, or closing in another thread
                return self._drained_at_close
            self._closing = True
            sessions = list(self._sessions)
        timeout = self.close_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        on_sender = threading.current_thread() is self._sender  # from on_exhausted
        for session in sessions:
            wait_s = 0.0 if on_sender else min(self.settle_wait_s, deadline - time.monotonic())
            try:
                session.finish(max(0.0, wait_s))
            except Exception:  # the flush and the stop below must happen regardless
                logger.exception("vm %s: could not settle at close", session.vm_id)
        with self._lock:
            self._sessions.clear()
            self._closed = True
        drained = self._flush(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        self._wake_batcher.set()
        self._wake_sender.set()
        for thread in (self._batcher, self._sender):
            if thread is not threading.current_thread():
                thread.join(max(0.1, deadline - time.monotonic()))
        if not self._batcher.is_alive() and not self._sender.is_alive():
            self.spool.close()
        else:
            logger.warning("token meter threads still busy at close; the spool keeps the rest")
        atexit.unregister(self.close)
        self._drained_at_close = drained
        return drained

    def status(self) -> SpoolStatus:
        """Counts per spool state, lines not spooled yet, and the batches kept back."""
        status = self.spool.status()
        with self._lock:
            buffered = len(self._buffer)
        return SpoolStatus(
            counts=status.counts,
            pending_lines=status.pending_lines,
            buffered_lines=buffered,
            refused=status.refused,
            invalid=status.invalid,
            failed=status.failed,
        )

    def retry_refused(self) -> int:
        """Resend refused batches with their same keys (after a top-up); returns how many."""
        count = self.spool.retry_refused()
        self._wake_sender.set()
        return count

    @contextlib.contextmanager
    def vm_session(
        self, vm_id: str, hold_minutes: int = 15, *, period_s: float | None = None
    ) -> Iterator[VmSession]:
        """Pay a VM's runtime ahead with a hold, renewed every period with the minutes used
        and settled on exit. `period_s` defaults to the hold's length."""
        vm_id = validate_vm_id(vm_id) or ""
        if not vm_id:
            raise ValueError("vm_id is required")
        if isinstance(hold_minutes, bool) or not isinstance(hold_minutes, int):
            raise ValueError("hold_minutes must be a whole number of minutes")
        if hold_minutes < 1 or protocol.hold_expiry_s(hold_minutes) > protocol.HOLD_EXPIRY_MAX_S:
            raise ValueError("hold_minutes must be between 1 and 1438")
        period = float(hold_minutes * 60 if period_s is None else period_s)
        if not 0 < period <= hold_minutes * 60:
            raise ValueError("period_s must be positive and at most the hold's length")
        session = VmSession(self, vm_id, hold_minutes, period)
        with self._lock:
            if self._closing:
                raise RuntimeError("the meter is closed")
            self._sessions.add(session)
        try:
            session.start()
            self._wake_batcher.set()  # its first renew may be due before the next cut
            yield session
        finally:
            try:
                on_sender = threading.current_thread() is self._sender
                session.finish(0.0 if on_sender else self.settle_wait_s)
            finally:
                with self._lock:
                    self._sessions.discard(session)

    # ---- used by sessions ----------------------------------------------------------------

    def spool_batch(self, batch: NewBatch, listener: VmSession | None = None) -> None:
        """Spool one batch; `listener` hears its final answer."""
        if listener is not None:
            with self._lock:
                self._listeners[batch.key] = listener
        try:
            self.spool.add(batch)
        except BaseException:
            with self._lock:
                self._listeners.pop(batch.key, None)
            raise
        self._wake_sender.set()

    def notify_exhausted(self, vm_id: str | None, grace_until: str | None) -> None:
        """Call on_exhausted; its errors are logged, never raised into the meter's threads."""
        if self.on_exhausted is None:
            logger.warning("tokens exhausted (vm %s, grace until %s)", vm_id, grace_until)
            return
        try:
            self.on_exhausted(vm_id, grace_until)
        except Exception:
            logger.exception("on_exhausted raised")

    # ---- the batcher thread --------------------------------------------------------------

    def _run(self, step: Callable[[], None]) -> None:
        """A thread's loop: one step at a time until close; an error never ends it."""
        while not self._stop.is_set():
            try:
                step()
            except Exception:
                logger.exception("token meter %s: unexpected error", threading.current_thread())
                self._stop.wait(ERROR_PAUSE_S)

    def _batch_step(self) -> None:
        self._wake_batcher.clear()
        now = time.monotonic()
        with self._lock:
            full = len(self._buffer) >= self.max_lines
            sessions = list(self._sessions)
        if full or now >= self._next_cut:
            self._next_cut = now + self.flush_interval_s
            self._cut()
        for session in sessions:
            if session.due <= now:
                session.tick(now)
        wake_at = min([self._next_cut, *(session.due for session in sessions)])
        self._wake_batcher.wait(max(0.0, wake_at - time.monotonic()))

    def _cut(self) -> int:
        """Move the buffer (and the CLI's pending lines) into the spool as batches."""
        with self._lock:
            lines, self._buffer = self._buffer, {}
        try:
            keys = self.spool.cut(self.customer_id, lines, self._build_batches)
        except BaseException:
            with self._lock:  # nothing lost: the lines go back for the next cut
                for line_key, quantity in lines.items():
                    self._buffer[line_key] = add_exact(self._buffer.get(line_key), quantity)
            raise
        if keys:
            self._wake_sender.set()
        return len(keys)

    def _build_batches(self, lines: dict[LineKey, Decimal]) -> list[NewBatch]:
        """Summed lines as debit batches of at most max_lines lines, each with a new key."""
        usage = [
            protocol.usage_line(action, part, vm_id)
            for (action, vm_id), total in lines.items()
            for part in split_quantity(total)
        ]
        occurred_at = protocol.utc_now_iso()
        batches = []
        for start in range(0, len(usage), self.max_lines):
            chunk = usage[start : start + self.max_lines]
            key = protocol.new_key(self.customer_id)
            payload = protocol.debit_payload(self.customer_id, key, chunk, occurred_at)
            batches.append(NewBatch(key, "debit", self.customer_id, payload, len(chunk)))
        return batches

    # ---- the sender thread ---------------------------------------------------------------

    def _send_step(self) -> None:
        self._wake_sender.clear()
        batch = self.spool.next_pending()
        if batch is None:
            self._wake_sender.wait(IDLE_POLL_S)
            return
        failures, not_before = self._backoff.get(batch.key, (0, 0.0))
        delay = not_before - time.monotonic()
        if delay > 0:
            # Oldest first, even while it waits: a renew must not overtake its hold.
            self._wake_sender.wait(delay)
            return
        if not self.spool.claim(batch.key):
            return
        try:
            self._attempt(batch, failures)
        except Exception:
            # Storing the answer failed (disk?): put the batch back so this process retries
            # it; a restart would resend it anyway.
            with contextlib.suppress(Exception):
                self.spool.retry_later(batch.key, "the answer could not be stored")
            raise
        finally:
            with self._progress:
                self._progress.notify_all()

    def _attempt(self, batch: Batch, failures: int) -> None:
        """Send a claimed batch once and store what came of it."""
        try:
            credential = self.credentials.current() if self.credentials else None
            outcome = protocol.invoke_once(
                self._client, self.function_name, batch.payload_text, credential
            )
            if self.credentials is not None:
                self.credentials.refused(outcome.code)
        except Exception as error:  # a client bug must not lose the batch: retry it
            logger.exception("invoke of %s raised", batch.key)
            outcome = Outcome(Verdict.RETRY, None, type(error).__name__, str(error))
        if outcome.verdict is Verdict.RETRY:
            failures += 1
            ceiling = min(self.retry_cap_s, self.retry_base_s * 2 ** min(failures - 1, 32))
            delay = self._rng.uniform(0, ceiling)  # full jitter: retries of many VMs spread out
            self._backoff[batch.key] = (failures, time.monotonic() + delay)
            self.spool.retry_later(batch.key, outcome.message)
            logger.warning(
                "batch %s: %s; retry %d in %.2f s", batch.key, outcome.message, failures, delay
            )
        else:
            self._backoff.pop(batch.key, None)
            self._finish(batch, outcome)

    def _finish(self, batch: Batch, outcome: Outcome) -> None:
        """Store a final answer, then tell whoever waits for it."""
        state = VERDICT_STATE[outcome.verdict]
        error = None if outcome.ok else outcome.message
        follow_up = None
        if batch.op not in USAGE_OPS and state is State.REFUSED:
            state = State.SENT  # a declined hold or release leaves nothing to bill
        if batch.op in ("settle", "renew") and outcome.code == "hold_not_found":
            # The usage must still be billed: re-spool it as a debit, in the same transaction,
            # under a key derived from this batch so a crash cannot bill it twice.
            follow_up = self._as_debit(batch)
            state = State.SENT if follow_up is not None else state
            error = f"{outcome.message}; usage re-spooled as debit {batch.key}.debit"
        self.spool.finish(batch.key, state, reply=outcome.reply, error=error, follow_up=follow_up)
        if follow_up is not None:
            self._wake_sender.set()
        if state is State.INVALID or state is State.FAILED:
            logger.error("batch %s (%s) kept as %s: %s", batch.key, batch.op, state, error)
        elif state is State.REFUSED:
            logger.warning("batch %s (%s) refused: %s", batch.key, batch.op, error)
        with self._lock:
            listener = self._listeners.pop(batch.key, None)
            fire = False
            if outcome.ok and batch.op == "debit":
                self._exhausted = False  # tokens flow again: the next refusal is news
            elif state is State.REFUSED and listener is None:
                fire = not self._exhausted
                self._exhausted = True
        if listener is not None:
            listener.on_answer(batch, outcome)
        if fire:
            # A VM at its daily limit is named: the caller stops that VM, not every VM.
            self.notify_exhausted(protocol.refused_vm(outcome), None)

    @staticmethod
    def _as_debit(batch: Batch) -> NewBatch | None:
        payload = batch.payload
        usage = payload.get("usage") or []
        if not usage:
            return None
        key = f"{batch.key}.debit"
        debit = protocol.debit_payload(batch.customer_id, key, usage, protocol.utc_now_iso())
        return NewBatch(key, "debit", batch.customer_id, debit, len(usage))
