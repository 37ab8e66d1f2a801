"""Cold start is a product feature: what each handler module pulls in, in a fresh process."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT

PROBE = """
import sys
sys.path[:0] = [{layer!r}, {function!r}]
import {module}
print(",".join(sorted(name for name in {forbidden!r} if name in sys.modules)))
"""


def imported(module: str, function_dir: str, forbidden: list[str]) -> list[str]:
    code = PROBE.format(
        layer=str(ROOT / "layers" / "shared"),
        function=str(ROOT / "functions" / function_dir),
        module=module,
        forbidden=forbidden,
    )
    env = {"TABLE_NAME": "LedgerTable", "AWS_DEFAULT_REGION": "us-east-1", "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return [name for name in result.stdout.strip().split(",") if name]


def test_debit_imports_neither_stripe_nor_pydantic_nor_xray() -> None:
    assert imported("debit_handler", "debit", ["stripe", "pydantic", "aws_xray_sdk"]) == []


def test_debit_loads_no_module_it_does_not_use() -> None:
    unused = [
        "token_billing.store.orders",
        "token_billing.store.history",
        "token_billing.store.usage_aggregates",
        "token_billing.domain.payments",
        "aws_lambda_powertools.event_handler",
    ]
    assert imported("debit_handler", "debit", unused) == []


@pytest.mark.parametrize(
    ("module", "folder"),
    [
        ("packages_handler", "packages"),
        ("balances_handler", "balances"),
        ("ledger_stream_handler", "ledger_stream"),
        ("holds_sweeper_handler", "holds_sweeper"),
        ("reconcile_handler", "reconcile"),
        ("auto_top_up_handler", "auto_top_up"),
    ],
)
def test_only_purchase_and_webhook_import_stripe(module: str, folder: str) -> None:
    assert imported(module, folder, ["stripe", "token_billing.integrations.stripe_gateway"]) == []


@pytest.mark.parametrize(
    ("module", "folder"),
    [
        ("purchase_handler", "purchase"),
        ("webhook_handler", "webhook"),
        ("top_up_charger_handler", "top_up_charger"),
    ],
)
def test_stripe_functions_load_stripe_during_init(module: str, folder: str) -> None:
    # Every request of these needs stripe: it loads at init, not on the first request.
    assert imported(module, folder, ["stripe"]) == ["stripe"]
