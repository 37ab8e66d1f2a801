"""One DynamoDB Local and one simulated system for the simulation's tests (each history
works on a table of its own, dropped when it ends)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.simulation.system import System, running_system


@pytest.fixture(scope="session")
def system() -> Iterator[System]:
    with running_system() as running:
        yield running
