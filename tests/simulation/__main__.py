"""`make simulate SEED=... STEPS=...`: histories from consecutive seeds until STEPS steps have
run, each checked against the model after every step; a failure is shrunk and printed with
the seed that replays it. Exit 1 on a violation.

    .venv/bin/python -m tests.simulation --seed 1 --steps 100000 [--history 300] [--no-faults]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from tests.simulation.runner import report, run_history, shrink
from tests.simulation.system import running_system


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.simulation", description=__doc__)
    parser.add_argument("--seed", type=int, default=1, help="the first history's seed")
    parser.add_argument("--steps", type=int, default=2_000, help="steps in all")
    parser.add_argument("--history", type=int, default=300, help="steps per history")
    parser.add_argument("--no-faults", action="store_true", help="no injected faults")
    parser.add_argument("--shrink-runs", type=int, default=300)
    parser.add_argument(
        "--restart-every", type=int, default=8, help="histories per DynamoDB Local process"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    totals = {"steps": 0, "histories": 0, "faults": 0, "crashes": 0, "stripe_faults": 0}
    seed = args.seed
    while totals["steps"] < args.steps:
        # A fresh DynamoDB Local every few histories: one that has created and dropped many
        # tables slows down steadily (9 s a history at first, 25 s after 28).
        with running_system() as system:
            for _ in range(args.restart_every):
                if totals["steps"] >= args.steps:
                    break
                length = min(args.history, args.steps - totals["steps"])
                result = run_history(system, seed, length, faults=not args.no_faults)
                totals["steps"] += len(result.steps)
                totals["histories"] += 1
                totals["faults"] += result.faults
                totals["crashes"] += result.crashes
                totals["stripe_faults"] += result.stripe_faults
                print(
                    f"seed {seed}: {len(result.steps)} steps, {result.faults} DynamoDB faults, "
                    f"{result.crashes} crashes, {result.stripe_faults} Stripe faults, "
                    f"{result.seconds:.1f} s"
                    + (f": VIOLATION {result.violation}" if result.violation else ""),
                    flush=True,
                )
                if result.violation is not None:
                    print(report(result, shrink(system, result, max_runs=args.shrink_runs)))
                    _summary(args.seed, seed, totals, started, violations=1)
                    return 1
                seed += 1
    _summary(args.seed, seed - 1, totals, started, violations=0)
    return 0


def _summary(
    first: int, last: int, totals: dict[str, int], started: float, *, violations: int
) -> None:
    print(
        f"seeds {first}-{last}: {totals['steps']} steps, {totals['histories']} histories, "
        f"{totals['faults']} DynamoDB faults and {totals['crashes']} crashes injected, "
        f"{totals['stripe_faults']} Stripe faults, violations: {violations}, "
        f"{time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
