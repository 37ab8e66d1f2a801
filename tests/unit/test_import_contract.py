"""The layer contract of pyproject.toml holds for the tree, and breaks on a wrong-way import.

Each case copies the layer package and the handlers into a temporary folder, adds one import
that DESIGN forbids, and runs `lint-imports` over the copy: the contract that names the rule
must fail, pointing at the file that broke it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# lint-imports over the copy alone: the venv's path entries for the real tree are dropped,
# or the namespace package `functions` would merge the copy's folder with the real one.
RUN_LINT = """
import sys
real = {real!r}
sys.path = {copy!r} + [entry for entry in sys.path if entry not in real and entry != ""]
sys.argv = ["lint-imports", "--config", {config!r}, "--no-cache"]
from importlinter.cli import lint_imports_command
sys.exit(lint_imports_command())
"""


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run the project's contracts over `tree` (a copy of the layer and the handlers)."""
    code = RUN_LINT.format(
        real=[str(ROOT), str(ROOT / "layers" / "shared")],
        copy=[str(tree), str(tree / "layers" / "shared")],
        config=str(ROOT / "pyproject.toml"),
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "functions", tmp_path / "functions", ignore=ignore)
    shutil.copytree(
        ROOT / "layers" / "shared" / "token_billing",
        tmp_path / "layers" / "shared" / "token_billing",
        ignore=ignore,
    )
    return tmp_path


def add_import(path: Path, line: str) -> None:
    text = path.read_text()
    anchor = "from __future__ import annotations\n"
    assert anchor in text, path
    path.write_text(text.replace(anchor, anchor + line + "\n", 1))


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "layers/shared/token_billing/store/ledger.py",
            "from token_billing.domain import catalog",
            "Calls go downward",
        ),
        (
            "layers/shared/token_billing/domain/purchases.py",
            "import stripe",
            "The domain decides without the HTTP resolver, pydantic or Stripe",
        ),
        (
            "layers/shared/token_billing/domain/debits.py",
            "from aws_lambda_powertools.event_handler import Response",
            "The domain decides without the HTTP resolver, pydantic or Stripe",
        ),
        (
            "layers/shared/token_billing/domain/holds.py",
            "import boto3",
            "The domain makes no AWS call of its own",
        ),
        (
            "layers/shared/token_billing/domain/debits.py",
            "from token_billing.store.codecs import attr_s",
            "The domain says what to write in plain values",
        ),
        (
            "layers/shared/token_billing/store/orders.py",
            "from token_billing.integrations import stripe_gateway",
            "Data access is DynamoDB only",
        ),
        (
            "functions/debit/debit_handler.py",
            "from token_billing.edge.models import balances",
            "The debit function's import graph holds neither pydantic nor stripe",
        ),
        (
            "functions/realtime_authorizer/realtime_authorizer_handler.py",
            "from token_billing.runtime import dynamodb_client",
            "The WebSocket authorizer runs on every connect",
        ),
        (
            "layers/shared/token_billing/edge/socket_auth.py",
            "from token_billing.edge.models import balances",
            "The WebSocket authorizer runs on every connect",
        ),
        (
            "functions/realtime/realtime_handler.py",
            "from token_billing.edge.models import balances",
            "The WebSocket route function's import graph holds neither pydantic nor stripe",
        ),
        (
            "functions/balances/balances_handler.py",
            "from token_billing.integrations import stripe_gateway",
            "Only the purchase, webhook and auto top-up charger functions load stripe",
        ),
        (
            "layers/shared/token_billing/domain/auto_top_up/admission.py",
            "from token_billing.domain.auto_top_up import charge",
            "Auto top-up's steps stand apart",
        ),
    ],
)
def test_a_wrong_way_import_breaks_its_contract(
    tree: Path, module: str, line: str, contract: str
) -> None:
    add_import(tree / module, line)
    result = lint(tree)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout
    # The report names the module that made the wrong import.
    dotted = module.removeprefix("layers/shared/").removesuffix(".py").replace("/", ".")
    assert dotted in " ".join(broken.split()), result.stdout
