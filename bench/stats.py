"""Order statistics for latency samples (nearest rank: every figure is a measured value)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    assert values, "no samples"
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least q% of samples at or below."""
    assert values, "no samples"
    assert 0 < q <= 100
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def ratio(value: float, floor: float) -> float:
    return value / floor if floor > 0 else math.inf


def fmt_ratio(value: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}x"
