"""The style's size limits, kept by a test: no module of `layers/` or `local/` over 450
lines, and no function or method there over 70 lines (from its `def` line to its last)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ROOT

CHECKED_FOLDERS = ("layers", "local")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 70


def checked_modules() -> list[Path]:
    """Every Python module under the checked folders."""
    modules = [path for folder in CHECKED_FOLDERS for path in (ROOT / folder).rglob("*.py")]
    return sorted(path for path in modules if "__pycache__" not in path.parts)


def function_lengths(source: str) -> Iterator[tuple[str, int]]:
    """(qualified name, lines from `def` to its last line) of every function and method,
    nested ones included: `Class.method`, `outer.inner`."""

    def visit(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    assert child.end_lineno is not None
                    yield name, child.end_lineno - child.lineno + 1
                yield from visit(child, f"{name}.")
            else:
                yield from visit(child, prefix)

    yield from visit(ast.parse(source), "")


def long_modules() -> dict[str, int]:
    """Modules over the limit, by path from the repository root: their line counts."""
    counted = {
        path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
        for path in checked_modules()
    }
    return {path: lines for path, lines in counted.items() if lines > MAX_MODULE_LINES}


def long_functions() -> dict[str, int]:
    """Functions over the limit, as `path:qualified name`: their line counts."""
    found = {}
    for path in checked_modules():
        for name, lines in function_lengths(path.read_text()):
            if lines > MAX_FUNCTION_LINES:
                found[f"{path.relative_to(ROOT).as_posix()}:{name}"] = lines
    return found


def test_no_module_is_over_450_lines() -> None:
    over = long_modules()
    assert over == {}, f"split these modules (at most {MAX_MODULE_LINES} lines): {over}"


def test_no_function_is_over_70_lines() -> None:
    over = long_functions()
    assert over == {}, f"shorten these functions (at most {MAX_FUNCTION_LINES} lines): {over}"


def test_the_count_runs_from_def_to_the_last_line_of_methods_and_nested_functions() -> None:
    statements = [f"x{n} = {n}" for n in range(MAX_FUNCTION_LINES - 1)]

    def indented(lines: list[str], depth: int) -> str:
        return "".join("    " * depth + line + "\n" for line in lines)

    source = (
        "class Store:\n    def fits(self):\n"
        + indented(statements, 2)
        + "def outer():\n    def inner():\n"
        + indented(statements, 2)
        + "    return inner\n"
    )
    lengths = dict(function_lengths(source))
    assert lengths == {
        "Store.fits": MAX_FUNCTION_LINES,
        "outer": MAX_FUNCTION_LINES + 2,
        "outer.inner": MAX_FUNCTION_LINES,
    }
    assert ROOT / "local" / "devserver.py" in checked_modules()
