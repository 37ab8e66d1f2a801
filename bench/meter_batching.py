"""Section 5, meter batching: what the agent's meter (agent/token_meter) sends for a stream of
usage records, against the floor of one debit per record.

Each agent is a real `Meter` on its own temporary SQLite spool, whose Lambda client is an
object with boto3's `invoke(FunctionName=..., Payload=...)` that runs the debit handler in
this process against DynamoDB Local and answers `{"StatusCode": 200, "Payload": <bytes>}`.
Records are drawn from a fixed seed over the five actions and a few VM ids, with quantities
whose cost is a whole number of milli-tokens, so the check is exact: what the ledger
debited must equal the cost of what was recorded, to the milli-token.

The meter cuts a batch every `flush_interval_s` (5 s by default) and when `max_lines`
distinct lines wait. Wall time is not simulated: the meter's timer is set out of reach and
the agent calls `flush(0)` (a cut, no wait) after every `RECORDS_PER_CUT` records, which is
what the timer does for an agent recording RECORDS_PER_CUT / 5 records a second.

Requests and write units are counted from the requests the handler actually sent (the
cost model's recorder, by the rules of bench/dynamo_units.py). The floor is one debit per
record: a sample of records each sent as its own one-line debit through the same handler,
measured the same way and scaled to 1,000 records.
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from bench.cost_model import Recorder, Request, dollars_per_million
from bench.harness import (
    ACTIONS,
    DEBIT_FUNCTION,
    FakeLambdaContext,
    Handler,
    Harness,
    agent_on_path,
)
from bench.report import Row, SectionResult
from bench.stats import fmt_ratio, ratio

SECTION = "5 meter batching"
RECORDS_PER_CUT = 100
VM_IDS = ("vm-a", "vm-b", "vm-c")
AGENT_THREADS = 10  # agents metering at once (each meter has its own two threads)
FUNDING_MT = 10**12
CLOSE_TIMEOUT_S = 120.0

UsageRecord = tuple[str, Decimal, str]  # (action, quantity, vm_id)


@dataclass(frozen=True)
class Plan:
    agents: int
    records: int  # per agent
    floor_sample: int  # single-record debits measured for the floor


def draw_records(seed: int, count: int) -> list[UsageRecord]:
    """Records whose every cost is a whole number of milli-tokens (rates are 100..1,000 mt
    per unit; minutes and MB carry at most 3 decimals, counts none)."""
    draw = random.Random(seed)
    records = []
    for _ in range(count):
        action = draw.choice(ACTIONS)
        if action in {"vm_runtime", "file_upload"}:
            quantity = Decimal(draw.randint(1, 30_000)) / 1000
        else:
            quantity = Decimal(draw.randint(1, 20))
        records.append((action, quantity, draw.choice(VM_IDS)))
    return records


def exact_cost_mt(records: list[UsageRecord]) -> int:
    from token_billing.domain.catalog import RATES

    total = sum(
        (Fraction(RATES[action].rate_mt_per_unit) * Fraction(quantity))
        for action, quantity, _ in records
    )
    cost = Fraction(total)
    assert cost.denominator == 1, "every record costs a whole number of milli-tokens"
    return int(cost)


@dataclass
class Invocations:
    count: int = 0
    lines: int = 0
    replies: Counter[str] = field(default_factory=Counter)


class InProcessLambda:
    """What the meter takes for a boto3 Lambda client: `invoke` runs the debit handler in
    this process and answers the way boto3 does (StatusCode, a readable Payload)."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._lock = threading.Lock()
        self.calls = Invocations()

    def invoke(self, *, FunctionName: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
        assert FunctionName == DEBIT_FUNCTION, FunctionName
        event = json.loads(Payload)
        reply = self._handler(event, FakeLambdaContext())
        outcome = "ok" if reply.get("ok") else str(reply.get("error", {}).get("code"))
        with self._lock:
            self.calls.count += 1
            self.calls.lines += len(event.get("usage") or [])
            self.calls.replies[outcome] += 1
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(reply).encode())}


@dataclass
class AgentRun:
    customer_id: str
    recorded_mt: int
    drained: bool = False


def _meter_one(
    harness: Harness, client: InProcessLambda, scratch: Path, index: int, records: int
) -> AgentRun:
    from token_meter import Meter

    customer_id = harness.customer(f"meter{index:02d}")
    usage = draw_records(seed=10_000 + index, count=records)
    run = AgentRun(customer_id, exact_cost_mt(usage))
    meter = Meter(
        customer_id,
        function_name=DEBIT_FUNCTION,
        spool_path=scratch / f"spool-{index:02d}.sqlite3",
        flush_interval_s=3_600.0,  # out of reach: the agent cuts every RECORDS_PER_CUT
        lambda_client=client,
        retry_base_s=0.05,
        retry_cap_s=1.0,
        close_timeout_s=CLOSE_TIMEOUT_S,
    )
    try:
        for number, (action, quantity, vm_id) in enumerate(usage, start=1):
            meter.record(action, quantity, vm_id=vm_id)
            if number % RECORDS_PER_CUT == 0:
                meter.flush(0)
    finally:
        run.drained = meter.close()
    return run


def _floor_sample(harness: Harness, recorder: Recorder, sample: int) -> tuple[list[Request], int]:
    """One-line debits of `sample` records through the handler: (requests, records)."""
    agent_on_path()
    from token_meter import protocol

    customer_id = harness.customer("meter-floor")
    harness.fund(customer_id, FUNDING_MT)
    context = FakeLambdaContext()
    with recorder.recording() as requests:
        for number, (action, quantity, vm_id) in enumerate(draw_records(9_999, sample)):
            key = protocol.new_key(customer_id)
            line = protocol.usage_line(action, quantity, vm_id)
            payload = protocol.debit_payload(customer_id, key, [line], protocol.utc_now_iso())
            reply = harness.handler(payload, context)
            assert reply.get("ok"), (number, reply)
    return list(requests), sample


def largest_entry(requests: list[Request]) -> int:
    sizes = [
        charge.size
        for request in requests
        for charge in request.charges
        if charge.what.startswith("Put TXN")
    ]
    return max(sizes, default=0)


def run(
    harness: Harness, scratch: Path, plan: Plan, *, progress: Callable[[str], None]
) -> SectionResult:
    agent_on_path()
    result = SectionResult()
    recorder = Recorder(harness.runtime_client, harness.bare_client, harness.table)
    floor_requests, sampled = _floor_sample(harness, recorder, plan.floor_sample)
    progress(f"meter batching: floor sampled ({sampled} one-record debits)")

    client = InProcessLambda(harness.handler)
    spools = scratch / "meter-spools"
    spools.mkdir(exist_ok=True)
    for index in range(plan.agents):
        harness.fund(harness.customer(f"meter{index:02d}"), FUNDING_MT)
    started = time.monotonic()
    with recorder.recording() as requests, ThreadPoolExecutor(AGENT_THREADS) as pool:
        runs = list(
            pool.map(
                lambda index: _meter_one(harness, client, spools, index, plan.records),
                range(plan.agents),
            )
        )
        sent = list(requests)
    elapsed = time.monotonic() - started
    progress(f"meter batching: {plan.agents} agents x {plan.records} records in {elapsed:.1f} s")

    records = plan.agents * plan.records
    per_k = 1_000 / records
    writes = sum(request.write for request in sent)
    reads = sum(request.read for request in sent)
    floor_invokes_per_k = 1_000.0
    floor_requests_per_k = len(floor_requests) / sampled * 1_000
    floor_writes_per_k = sum(request.write for request in floor_requests) / sampled * 1_000
    floor_reads_per_k = sum(request.read for request in floor_requests) / sampled * 1_000
    floor_per_debit = floor_writes_per_k / 1_000
    calls = client.calls
    result.rows.append(
        Row(
            SECTION,
            f"debits sent per 1,000 recorded lines ({plan.agents} agents x {plan.records:,} "
            f"records, a cut every {RECORDS_PER_CUT})",
            f"{calls.count * per_k:.1f} debit invokes, {len(sent) * per_k:.1f} DynamoDB "
            f"requests; {calls.lines * per_k:.0f} lines sent",
            f"one debit per record: {floor_invokes_per_k:,.0f} invokes, "
            f"{floor_requests_per_k:,.0f} requests",
            fmt_ratio(ratio(calls.count * per_k, floor_invokes_per_k), 3),
        )
    )
    result.rows.append(
        Row(
            SECTION,
            "DynamoDB write units per 1,000 recorded lines",
            f"{writes * per_k:.1f} WRU + {reads * per_k:.1f} RRU = "
            f"${dollars_per_million(writes / records, reads / records):.4f} per million lines",
            f"{floor_invokes_per_k:,.0f} debits x {floor_per_debit:.2f} WRU = "
            f"{floor_writes_per_k:,.0f} WRU = "
            f"${dollars_per_million(floor_per_debit, floor_reads_per_k / 1_000):.3f}"
            " per million lines",
            fmt_ratio(ratio(writes * per_k, floor_writes_per_k), 3),
        )
    )
    debited = 0
    recorded = 0
    consistent = True
    for agent in runs:
        entries = harness.check_ledger.sum_entries_mt(agent.customer_id)
        debited += FUNDING_MT - entries
        recorded += agent.recorded_mt
        consistent &= harness.invariant_holds(agent.customer_id)
    exact = debited == recorded and consistent and all(agent.drained for agent in runs)
    undrained = sum(1 for agent in runs if not agent.drained)
    other = {code: n for code, n in calls.replies.items() if code != "ok"}
    result.rows.append(
        Row(
            SECTION,
            "ledger total = cost of what was recorded",
            f"{debited:,} mt debited vs {recorded:,} mt recorded "
            f"({'equal' if debited == recorded else f'off by {debited - recorded:+,} mt'}); "
            f"balance = sum(entries): {'yes' if consistent else 'NO'} on {len(runs)} customers"
            + (f"; {undrained} spools not drained" if undrained else ""),
            "the exact sum of each record's rate x quantity",
            "",
            "exact",
            "PASS" if exact else "FAIL",
        )
    )
    if not exact:
        result.failed.append("meter batching: ledger total != cost of what was recorded")
    result.notes.append(
        f"Meter batching: {plan.agents} `Meter`s ({AGENT_THREADS} at a time, each with its "
        f"temporary spool), {plan.records:,} records each over {len(ACTIONS)} actions and "
        f"{len(VM_IDS)} VM ids, `flush(0)` after every {RECORDS_PER_CUT} records (what the "
        f"5 s timer does at {RECORDS_PER_CUT // 5} records/s; fewer records per cut means "
        f"proportionally more debits, down to the floor at one); {calls.count} invokes, "
        f"replies {dict(calls.replies)}{' (not all ok)' if other else ''}, {elapsed:.1f} s "
        "wall. Each batch holds one line per (action, VM) seen since the last cut (at "
        f"most {len(ACTIONS) * len(VM_IDS)}): a metered debit cost "
        f"{writes / max(1, calls.count):.2f} WRU (largest entry {largest_entry(sent)} B), "
        f"a one-line debit {floor_per_debit:.2f} WRU (floor: {sampled} records each sent "
        "as its own debit)."
    )
    return result
