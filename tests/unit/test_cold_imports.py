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
        "token_billing.store.order_records",
        "token_billing.store.history",
        "token_billing.store.usage_aggregates",
        "token_billing.domain.payments",
        "aws_lambda_powertools.event_handler",
        # Per-VM limits (issue 25): the debit reads and enforces them, never changes them,
        # and usage by VM is the ledger stream's.
        "token_billing.domain.vm_limits",
        "token_billing.domain.vm_usage",
        "token_billing.store.vm_usage",
    ]
    assert imported("debit_handler", "debit", unused) == []


@pytest.mark.parametrize(
    ("module", "folder"),
    [
        ("packages_handler", "packages"),
        ("balances_handler", "balances"),
        ("grants_handler", "grants"),
        ("ledger_stream_handler", "ledger_stream"),
        ("holds_sweeper_handler", "holds_sweeper"),
        ("reconcile_handler", "reconcile"),
        ("auto_top_up_handler", "auto_top_up"),
        ("vm_limits_handler", "vm_limits"),
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


AUTO_TOP_UP_STEPS = ("settings", "admission", "charge", "attempt_end", "webhooks")


@pytest.mark.parametrize(
    ("module", "folder", "step"),
    [
        ("auto_top_up_handler", "auto_top_up", "settings"),
        ("ledger_stream_handler", "ledger_stream", "admission"),
        ("top_up_charger_handler", "top_up_charger", "charge"),
        ("webhook_handler", "webhook", "webhooks"),
    ],
)
def test_each_auto_top_up_function_loads_its_own_step_only(
    module: str, folder: str, step: str
) -> None:
    package = "token_billing.domain.auto_top_up"
    steps = [f"{package}.{name}" for name in AUTO_TOP_UP_STEPS]
    expected = [f"{package}.{step}"] + ([f"{package}.attempt_end"] if step == "charge" else [])
    assert imported(module, folder, steps) == sorted(expected)


def test_the_websocket_authorizer_loads_no_aws_sdk_pydantic_or_stripe() -> None:
    # It runs on every connect: PyJWT (and its crypto) only, at init. Powertools' user-agent
    # module imports the bare botocore package (0.6 ms); no session, client or boto3.
    heavy = ["boto3", "botocore.session", "botocore.client", "pydantic", "stripe", "aws_xray_sdk"]
    module, folder = "realtime_authorizer_handler", "realtime_authorizer"
    assert imported(module, folder, heavy) == []
    assert imported(module, folder, ["jwt"]) == ["jwt"]


def test_the_websocket_routes_load_neither_pydantic_nor_stripe_nor_jwt() -> None:
    unused = ["pydantic", "stripe", "jwt", "aws_lambda_powertools.event_handler"]
    assert imported("realtime_handler", "realtime", unused) == []


def test_the_ledger_stream_makes_no_management_api_client_at_init() -> None:
    # Created on the first push: most batches reach nobody watching.
    assert imported("ledger_stream_handler", "ledger_stream", ["jwt", "websockets"]) == []
