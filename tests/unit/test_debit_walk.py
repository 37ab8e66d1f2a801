"""The README's walk of a debit matches the tree: the modules it names exist, there are at
most eight below the handler, the last one sends the TransactWriteItems, and none of them
imports a module named above it but the shared `core` (so a debit's payload cannot go
back into one it left)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

LAYER = ROOT / "layers" / "shared"
WALK_HEADING = "A debit, from the invoke to its one write."


def walk_modules() -> list[Path]:
    readme = (ROOT / "README.md").read_text()
    after = readme.split(WALK_HEADING, 1)[1]
    block = after.split("```", 2)[1]
    paths = re.findall(r"^\s*(\S+\.py)\s", block, flags=re.MULTILINE)
    return [ROOT / path if path.startswith("functions/") else LAYER / path for path in paths]


def dotted(path: Path) -> str:
    base = LAYER if path.is_relative_to(LAYER) else ROOT
    return ".".join(path.relative_to(base).with_suffix("").parts)


def imported(path: Path) -> set[str]:
    """What a module imports when it runs (imports for type checkers only do not count)."""
    names: set[str] = set()
    tree = ast.parse(path.read_text())
    for block in ast.walk(tree):
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING":
            block.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_walk_names_real_modules_at_most_eight_below_the_handler() -> None:
    modules = walk_modules()
    assert modules[0] == ROOT / "functions" / "debit" / "debit_handler.py"
    assert all(path.is_file() for path in modules), modules
    assert len(modules) - 1 <= 8
    assert "transact_write_items" in modules[-1].read_text()


def test_no_module_of_the_walk_imports_one_named_above_it() -> None:
    """`core` is the floor every layer may use (an error message formats tokens too)."""
    modules = walk_modules()
    for index, path in enumerate(modules):
        above = {dotted(earlier) for earlier in modules[:index]} - {
            name for name in map(dotted, modules) if name.startswith("token_billing.core.")
        }
        assert not imported(path) & above, (path, imported(path) & above)


def test_the_handler_dispatches_every_documented_op_by_its_table() -> None:
    import debit_handler

    documented = re.findall(
        r"^\| `(\w+)` \|", (ROOT / "docs" / "debit-invoke-api.md").read_text(), re.M
    )
    assert list(debit_handler.OPS) == documented
