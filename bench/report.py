"""The results table: one Markdown table, the machine it ran on, and notes."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

COLUMNS = ("section", "measure", "value", "floor (same run)", "ratio", "target", "result")


@dataclass(frozen=True)
class Row:
    section: str
    measure: str
    value: str
    floor: str
    ratio: str
    target: str = ""
    result: str = ""

    def cells(self) -> tuple[str, ...]:
        return (
            self.section,
            self.measure,
            self.value,
            self.floor,
            self.ratio,
            self.target,
            self.result,
        )


@dataclass
class SectionResult:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # broken invariants: exit non-zero


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in {"model name", "Model", "cpu model"}:
            return value.strip()
    return platform.processor() or "unknown"


def machine_lines(started: datetime) -> list[str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"- CPU: {cpu_model()} ({platform.machine()}), {os.cpu_count()} cores"
        + (f" ({usable} usable by this process)" if usable is not None else ""),
        f"- Python: {platform.python_implementation()} {sys.version.split()[0]}",
        f"- Date: {started.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Load average at start (1/5/15 min): {load}",
    ]


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def render_table(rows: list[Row]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(_escape(cell) for cell in row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def render(
    rows: list[Row],
    notes: list[str],
    *,
    started: datetime,
    wall_s: float,
    quick: bool,
) -> str:
    title = "# Benchmark results" + (
        " (--quick smoke run: counts too small to read)" if quick else ""
    )
    parts = [
        title,
        "",
        "Written by `make bench` (`python -m bench`); bench/README.md says how to read it.",
        "",
        *machine_lines(started),
        f"- Wall time of the benchmark: {wall_s:.0f} s (after `make sam-build`)",
        "",
        render_table(rows),
        "",
        "## Notes",
        "",
        *(f"- {note}" for note in notes),
        "",
    ]
    return "\n".join(parts)
