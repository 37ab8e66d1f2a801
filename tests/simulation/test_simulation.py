"""The bounded simulation `make test` runs (issue 24): a fixed set of seeds, faults on, every
step checked against the model; one seed replayed twice, step for step; and planted defects
the simulation must find, each with the seed that replays it.

The long runs are `make simulate SEED=... STEPS=...` (README, "Simulation").
"""

from __future__ import annotations

import pytest

from tests.simulation.runner import HistoryResult, report, run_history, shrink
from tests.simulation.system import PLANTED_DEFECTS, System, planted_defect

pytestmark = pytest.mark.integration

# Measured on the 2-core machine (README, "Simulation"): well inside make test's budget.
SEEDS = (1, 2, 3, 4)
STEPS = 150
# Seeds tried for a planted defect, each a history of DEFECT_STEPS steps.
DEFECT_SEEDS = tuple(range(16, 24))
DEFECT_STEPS = 120


@pytest.mark.parametrize("seed", SEEDS)
def test_a_history_with_faults_agrees_with_the_model_at_every_step(
    system: System, seed: int
) -> None:
    result = run_history(system, seed, STEPS, faults=True)
    assert result.violation is None, report(result)
    assert len(result.steps) == STEPS + 1  # and the drain, with `make reconcile` clean


def test_one_seed_replays_the_same_history_step_for_step(system: System) -> None:
    first = run_history(system, 7, 80, faults=True)
    second = run_history(system, 7, 80, faults=True)
    assert first.violation is None, report(first)
    assert first.trace == second.trace
    assert first.observed == second.observed  # every reply, in order
    assert (first.faults, first.crashes) == (second.faults, second.crashes)
    assert first.faults + first.crashes > 0


def first_failure(system: System, defect: str) -> HistoryResult:
    with planted_defect(defect):
        for seed in DEFECT_SEEDS:
            result = run_history(system, seed, DEFECT_STEPS, faults=True)
            if result.violation is not None:
                return result
    raise AssertionError(f"the simulation did not find {defect} in seeds {DEFECT_SEEDS}")


@pytest.mark.parametrize("defect", PLANTED_DEFECTS)
def test_the_simulation_finds_a_planted_defect_and_its_seed_replays_it(
    system: System, defect: str
) -> None:
    found = first_failure(system, defect)
    with planted_defect(defect):
        again = run_history(system, found.seed, found.steps)
    assert again.violation is not None
    assert (again.failed_at, str(again.violation)) == (found.failed_at, str(found.violation))
    clean = run_history(system, found.seed, found.steps)  # without the defect: no failure
    assert clean.violation is None, report(clean)


def test_a_failure_is_shrunk_to_a_shorter_history_that_still_fails(system: System) -> None:
    found = first_failure(system, "replay_debits_again")
    with planted_defect("replay_debits_again"):
        shrunk = shrink(system, found, max_runs=40)
    assert shrunk.violation is not None
    assert shrunk.violation.check == found.violation.check  # type: ignore[union-attr]
    assert len(shrunk.steps) < len(found.steps)
    printed = report(found, shrunk)
    assert f"seed {found.seed}" in printed
    assert "shortest history" in printed
