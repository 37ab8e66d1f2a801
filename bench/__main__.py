"""`python -m bench [--quick]`: run every section, print the results table, write it to
bench/RESULTS.md (a --quick smoke run prints only, unless --output names a file).

Expects `sam build` output in .aws-sam/build (`make bench` builds first). Exits 1 when an
invariant breaks (balance != sum of entries), 2 when the build is missing; a figure over
its target is reported, never fatal.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    cold_start,
    contention,
    cost_model,
    debit_overhead,
    hold_latency,
    meter_batching,
    package_size,
)
from bench.build import BuildMissing, host_layer
from bench.harness import open_harness
from bench.report import Row, SectionResult, render

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass(frozen=True)
class Budget:
    cold_runs: int
    warmup: int
    count: int
    big_warmup: int
    big_count: int
    max_debits: int
    time_limit_s: float
    hold_warmup: int
    hold_count: int
    meter: meter_batching.Plan


FULL = Budget(
    cold_runs=15,
    warmup=50,
    count=400,
    big_warmup=5,
    big_count=100,
    max_debits=3_000,
    time_limit_s=6.0,
    hold_warmup=20,
    hold_count=200,
    meter=meter_batching.Plan(agents=50, records=2_000, floor_sample=50),
)
QUICK = Budget(
    cold_runs=2,
    warmup=3,
    count=20,
    big_warmup=1,
    big_count=3,
    max_debits=60,
    time_limit_s=1.0,
    hold_warmup=2,
    hold_count=10,
    meter=meter_batching.Plan(agents=3, records=300, floor_sample=5),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run with tiny counts")
    parser.add_argument(
        "--output",
        type=Path,
        help="write the results here (default: full runs "
        "write bench/RESULTS.md, --quick writes nothing)",
    )
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    output: Path | None = args.output or (None if args.quick else RESULTS)
    started = datetime.now(UTC)
    clock = time.monotonic()

    def progress(message: str) -> None:
        print(f"[bench {time.monotonic() - clock:6.1f} s] {message}", file=sys.stderr, flush=True)

    rows: list[Row] = []
    notes: list[str] = []
    failed: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
            # token_billing is imported from this layer (open_harness puts it on sys.path).
            layer = host_layer(Path(scratch))
            sections: list[SectionResult] = [package_size.run()]
            progress("cold start: spawning fresh interpreters")
            sections.append(
                cold_start.run(layer, Path(scratch), runs=budget.cold_runs, progress=progress)
            )
            progress("starting DynamoDB Local")
            with open_harness(layer.path) as harness:
                overhead, rate = debit_overhead.run(
                    harness,
                    warmup=budget.warmup,
                    count=budget.count,
                    big_warmup=budget.big_warmup,
                    big_count=budget.big_count,
                    progress=progress,
                )
                sections.append(overhead)
                sections.append(
                    hold_latency.run(
                        harness,
                        warmup=budget.hold_warmup,
                        count=budget.hold_count,
                        progress=progress,
                    )
                )
                sections.append(
                    contention.run(
                        harness,
                        single_thread_rate=rate,
                        max_debits=budget.max_debits,
                        time_limit_s=budget.time_limit_s,
                        progress=progress,
                    )
                )
                sections.append(
                    meter_batching.run(harness, Path(scratch), budget.meter, progress=progress)
                )
                sections.append(cost_model.run(harness, progress=progress))
    except BuildMissing as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    for section in sorted(sections, key=lambda item: item.rows[0].section if item.rows else ""):
        rows += section.rows
        notes += section.notes
        failed += section.failed
    text = render(rows, notes, started=started, wall_s=time.monotonic() - clock, quick=args.quick)
    print(text)
    if output is not None:
        output.write_text(text)
        progress(f"wrote {output}")
    for failure in failed:
        print(f"bench: invariant broken: {failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
