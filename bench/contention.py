"""Section 4, contention: N agents (threads, each invoking the handler in-process) debiting
one customer, and 32 agents on 32 customers; each run bounded by a debit count and a time.

One-customer runs are funded for ~85% of their planned debits, so the balance runs out
near the end and the tail is refused: refusals show the condition holding under
concurrency. Retries are counted where the ledger takes them
(`store.transactions._backoff`, called before every retry of a retryable failure), and
TransactionConflict cancellations where it interprets them. DynamoDB Local serializes
transactions, so conflicts may well be 0 here where DynamoDB would report some: the count is
what this engine did, not a forecast.
After every run, each customer's balance must equal the sum of its ledger entries.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.harness import THREE_LINES, FakeLambdaContext, Harness, patched
from bench.report import Row, SectionResult
from bench.stats import fmt_ratio, median, percentile, ratio

SECTION = "4 contention"
FUNDED_SHARE = 0.85  # of the planned debits, on one-customer runs
PLAN_SHARE = 0.6  # of what the measured rate could do in the time limit


@dataclass(frozen=True)
class RunSpec:
    agents: int
    customers: int

    @property
    def label(self) -> str:
        customers = "1 customer" if self.customers == 1 else f"{self.customers} customers"
        return f"{self.agents} agent{'s' if self.agents > 1 else ''}, {customers}"


RUNS = (RunSpec(1, 1), RunSpec(8, 1), RunSpec(32, 1), RunSpec(32, 32))


@dataclass
class Outcome:
    spec: RunSpec
    planned: int
    funded_debits: int
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_ns: list[int] = field(default_factory=list)
    retries: int = 0
    conflicts: int = 0
    elapsed_s: float = 0.0
    stopped_by: str = "count"
    consistent: bool = True

    @property
    def handled(self) -> int:
        return sum(self.outcomes.values())

    @property
    def per_s(self) -> float:
        return self.handled / self.elapsed_s if self.elapsed_s else 0.0


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.retries = 0
        self.conflicts = 0

    def add(self, *, retries: int = 0, conflicts: int = 0) -> None:
        with self._lock:
            self.retries += retries
            self.conflicts += conflicts


def _conflicts_in(error: Any) -> int:
    response = getattr(error, "response", {}) or {}
    code = response.get("Error", {}).get("Code", "")
    if code == "TransactionConflictException":
        return 1
    reasons = response.get("CancellationReasons", []) or []
    return sum(1 for reason in reasons if reason.get("Code") == "TransactionConflict")


def _one_run(
    harness: Harness, spec: RunSpec, planned: int, time_limit_s: float, cost_mt: int, tag: str
) -> Outcome:
    customers = [harness.customer(f"{tag}-c{index}") for index in range(spec.customers)]
    # A customer of its own per agent can cover the whole run: no refusal expected there.
    funded = max(1, int(planned * FUNDED_SHARE)) if spec.customers == 1 else planned
    for customer_id in customers:
        harness.fund(customer_id, funded * cost_mt)
    outcome = Outcome(spec, planned, funded)
    counters = Counters()
    # Every ledger transaction runs through these two module functions (imported here: the
    # harness puts the built layer on the path first).
    from token_billing.store import transactions

    backoff = transactions._backoff
    interpret = transactions._interpret_failure

    def counting_backoff(sleep: Any, attempt: int) -> None:
        counters.add(retries=1)
        backoff(sleep, attempt)

    def counting_interpret(error: Any, *args: Any) -> Any:
        counters.add(conflicts=_conflicts_in(error))
        return interpret(error, *args)

    issued = 0
    issue_lock = threading.Lock()
    results_lock = threading.Lock()
    deadline = time.monotonic() + time_limit_s

    def agent(index: int) -> None:
        nonlocal issued
        context = FakeLambdaContext()
        customer_id = customers[index % len(customers)]
        local: Counter[str] = Counter()
        latencies: list[int] = []
        for sequence in range(planned):  # bounded: never more than the whole plan
            with issue_lock:
                if issued >= planned or time.monotonic() >= deadline:
                    break
                issued += 1
            payload = harness.debit_payload(customer_id, f"{tag}-a{index}-{sequence}", THREE_LINES)
            start = time.perf_counter_ns()
            reply = harness.handler(payload, context)
            latencies.append(time.perf_counter_ns() - start)
            local["ok" if reply.get("ok") else reply["error"]["code"]] += 1
        with results_lock:
            outcome.outcomes.update(local)
            outcome.latencies_ns.extend(latencies)

    with (
        patched(transactions, "_backoff", counting_backoff),
        patched(transactions, "_interpret_failure", counting_interpret),
    ):
        started = time.monotonic()
        with ThreadPoolExecutor(spec.agents) as pool:
            list(pool.map(agent, range(spec.agents)))
        outcome.elapsed_s = time.monotonic() - started
    outcome.stopped_by = "count" if issued >= planned else "time"
    outcome.retries, outcome.conflicts = counters.retries, counters.conflicts
    outcome.consistent = all(harness.invariant_holds(customer) for customer in customers)
    return outcome


def run(
    harness: Harness,
    *,
    single_thread_rate: float,
    max_debits: int,
    time_limit_s: float,
    progress: Callable[[str], None],
) -> SectionResult:
    result = SectionResult()
    cost_mt = harness.price_mt(THREE_LINES)
    rate = single_thread_rate
    base: Outcome | None = None
    for index, spec in enumerate(RUNS):
        planned = max(spec.agents, min(max_debits, int(rate * time_limit_s * PLAN_SHARE)))
        outcome = _one_run(harness, spec, planned, time_limit_s, cost_mt, f"k{index}")
        if outcome.per_s:
            rate = outcome.per_s  # size the next run by what this one achieved
        base = base or outcome
        progress(f"contention: {spec.label}: {outcome.handled} debits")
        ok = outcome.outcomes.get("ok", 0)
        refused = outcome.outcomes.get("insufficient_tokens", 0)
        other = {
            code: n
            for code, n in outcome.outcomes.items()
            if code not in {"ok", "insufficient_tokens"}
        }
        p50 = median(outcome.latencies_ns) / 1e6 if outcome.latencies_ns else 0.0
        p99 = percentile(outcome.latencies_ns, 99) / 1e6 if outcome.latencies_ns else 0.0
        verdict = "yes" if outcome.consistent else "NO"
        value = (
            f"{outcome.per_s:,.0f} debits/s; {ok} ok, {refused} refused"
            + "".join(f", {n} {code}" for code, n in sorted(other.items()))
            + f"; {outcome.retries} retries ({outcome.conflicts} TransactionConflict); "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; stopped by {outcome.stopped_by} "
            f"({outcome.elapsed_s:.1f} s); balance = sum(entries): {verdict}"
        )
        result.rows.append(
            Row(
                SECTION,
                spec.label,
                value,
                "1 agent, 1 customer"
                + (" (this row)" if outcome is base else f": {base.per_s:,.0f}/s"),
                fmt_ratio(ratio(outcome.per_s, base.per_s)),
                "balance = sum(entries)",
                "PASS" if outcome.consistent else "FAIL",
            )
        )
        if not outcome.consistent:
            result.failed.append(f"contention {spec.label}: balance != sum(entries)")
    result.notes.append(
        f"Contention: each run planned for min({max_debits}, {PLAN_SHARE:.0%} of what the previous "
        f"run's rate does in {time_limit_s:.0f} s) debits of 3 lines, stopped at that count or "
        f"{time_limit_s:.0f} s; one-customer runs funded for {FUNDED_SHARE:.0%} of the plan so "
        "the tail is refused. Threads share one process (the GIL) and the machine's cores "
        "with DynamoDB Local, so the throughput ratio is this machine's, not Lambda's (where "
        "every agent's invocation gets its own environment)."
    )
    return result
