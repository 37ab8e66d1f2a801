"""Order statistics for latency samples (nearest rank: every figure is a measured value)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


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


@dataclass
class Series:
    """Latency samples of one kind of call, in nanoseconds."""

    ns: list[int] = field(default_factory=list)

    @property
    def p50_ms(self) -> float:
        return median(self.ns) / 1e6

    @property
    def p99_ms(self) -> float:
        return percentile(self.ns, 99) / 1e6

    @property
    def per_s(self) -> float:
        return len(self.ns) / (sum(self.ns) / 1e9)


def paired_overhead_ms(handler: Series, floor: Series) -> float:
    """Median of (handler - floor) over calls made back to back: what the handler adds."""
    return median([h - f for h, f in zip(handler.ns, floor.ns, strict=True)]) / 1e6
