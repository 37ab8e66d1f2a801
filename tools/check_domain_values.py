"""The domain states what to write in its own terms; only `store/` builds DynamoDB values.

Run by `make lint`: fails, naming file and line, when a module under the domain builds a
DynamoDB attribute value (`{"S": ...}`, `{"N": ...}`, `{"M": ...}`...) or reads one
(`item["amount_mt"]["N"]`). The import-linter contract in pyproject.toml keeps the domain
away from `store.codecs`; this check catches the literals no import shows.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

DOMAIN = Path(__file__).resolve().parent.parent / "layers" / "shared" / "token_billing" / "domain"
# DynamoDB's attribute value type descriptors.
DESCRIPTORS = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})


def _is_descriptor(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value in DESCRIPTORS


def _shown(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def findings(path: Path) -> Iterator[str]:
    """Every place in one module that builds or reads a DynamoDB attribute value."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and len(node.keys) == 1 and _is_descriptor(node.keys[0]):
            key = node.keys[0]
            assert isinstance(key, ast.Constant)
            value = f"{{{key.value!r}: ...}}"
            yield f"{_shown(path)}:{node.lineno}: builds a DynamoDB attribute value {value}"
        elif isinstance(node, ast.Subscript) and _is_descriptor(node.slice):
            assert isinstance(node.slice, ast.Constant)
            value = f"[{node.slice.value!r}]"
            yield f"{_shown(path)}:{node.lineno}: reads a DynamoDB attribute value {value}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    root = Path(args[0]) if args else DOMAIN
    found = [line for path in sorted(root.rglob("*.py")) for line in findings(path)]
    for line in found:
        print(line)
    if found:
        print(
            f"{len(found)} DynamoDB attribute value(s) in the domain: say what to write in "
            "plain values and let store/ encode them (store/codecs.py)."
        )
        return 1
    print(f"domain values: no DynamoDB attribute value under {_shown(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
