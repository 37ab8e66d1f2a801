"""Section 7, package size: unzipped bytes of each built function and of the layer, against
Lambda's quota of 250 MB unzipped for a function and all its layers together (a published
limit, not a measured floor: the one denominator that decides whether a deploy fails)."""

from __future__ import annotations

import os
from pathlib import Path

from bench.build import BUILD_DIR, built_layer_dir, layer_logical_id
from bench.report import Row, SectionResult
from local.template import load_template

SECTION = "7 package size"
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
MB = 1024 * 1024


def tree_size(root: Path) -> tuple[int, int]:
    """(bytes, files) under root, symlinks not followed."""
    total = files = 0
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
                files += 1
    return total, files


def largest_packages(root: Path, count: int) -> list[tuple[str, int]]:
    sizes = []
    for child in root.iterdir():
        if child.name.endswith((".dist-info", ".data")) or child.name == "__pycache__":
            continue
        size = tree_size(child)[0] if child.is_dir() else child.stat().st_size
        sizes.append((child.name, size))
    return sorted(sizes, key=lambda item: item[1], reverse=True)[:count]


def _mb(size: int) -> str:
    return f"{size / MB:.2f} MB" if size >= MB / 10 else f"{size / 1024:.1f} KB"


def run() -> SectionResult:
    result = SectionResult()
    layer_root = built_layer_dir().parent
    layer_bytes, layer_files = tree_size(layer_root)
    limit = f"250 MB unzipped (function + layers): {_mb(UNZIPPED_LIMIT_BYTES - layer_bytes)} left"
    result.rows.append(
        Row(
            SECTION,
            f"layer {layer_logical_id()}",
            f"{_mb(layer_bytes)} in {layer_files} files",
            "Lambda quota 250 MB unzipped",
            f"{layer_bytes / UNZIPPED_LIMIT_BYTES:.1%} of quota",
        )
    )
    for logical_id in load_template().functions():
        function_dir = BUILD_DIR / logical_id
        if not function_dir.is_dir():
            result.rows.append(Row(SECTION, logical_id, "not built", "", "", "", "ERROR"))
            continue
        size, files = tree_size(function_dir)
        result.rows.append(
            Row(
                SECTION,
                f"{logical_id} (+ layer)",
                f"{_mb(size)} in {files} files (+ {_mb(layer_bytes)})",
                limit,
                f"{(size + layer_bytes) / UNZIPPED_LIMIT_BYTES:.1%} of quota",
            )
        )
    biggest = ", ".join(
        f"{name} {_mb(size)}" for name, size in largest_packages(built_layer_dir(), 5)
    )
    result.notes.append(f"Layer, largest top-level entries: {biggest}.")
    return result
