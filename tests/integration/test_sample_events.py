"""Every sample event in events/ runs through its function's handler on DynamoDB Local:
the same files `sam local invoke -e` takes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import EVENTS, fake_context, load_event
from tests.integration.helpers import assert_consistent, fund
from token_billing.store.ledger import Ledger

pytestmark = pytest.mark.integration


def call(module: str, event_name: str) -> dict[str, Any]:
    handler = __import__(module).lambda_handler
    reply: dict[str, Any] = handler(load_event(event_name), fake_context())
    return reply


def test_every_function_has_sample_events() -> None:
    from local.template import load_template

    folders = {path.name for path in EVENTS.iterdir() if path.is_dir()}
    for spec in load_template().functions().values():
        folder = spec.module_name.removesuffix("_handler")
        assert folder in folders, f"events/{folder}/ is missing for {spec.logical_id}"


def test_balances_sample_events(ledger: Ledger) -> None:
    fund(ledger, "cust_demo", 1_000_000, key="samples")
    for name in ["get-balance", "list-transactions", "list-orders", "dashboard", "export-admin"]:
        reply = call("balances_handler", f"balances/{name}.json")
        assert reply["statusCode"] == 200, (name, reply["body"][:300])
    assert call("balances_handler", "balances/dashboard-other-customer.json")["statusCode"] == 403


def test_grants_sample_events(ledger: Ledger) -> None:
    fund(ledger, "cust_demo", 1_000_000, key="samples")
    granted = call("grants_handler", "grants/grant-admin.json")
    assert granted["statusCode"] in (200, 201), granted["body"]
    assert json.loads(granted["body"])["amount"] == "250"
    assert assert_consistent(ledger, "cust_demo").granted_mt >= 1_250_000


def test_hold_sample_events_run_in_order(ledger: Ledger) -> None:
    fund(ledger, "cust_demo", 100_000, key="hold-samples")
    assert call("debit_handler", "debit/hold.json")["ok"]
    renewed = call("debit_handler", "debit/renew.json")
    assert (renewed["ok"], renewed["renewed"], renewed["debited"]) == (True, True, "14.95")
    settled = call("debit_handler", "debit/settle.json")
    assert (settled["debited"], settled["released"]) == ("6.5", "8.5")
    assert call("debit_handler", "debit/release.json")["error"]["code"] == "hold_not_found"
    assert_consistent(ledger, "cust_demo")


def test_auto_top_up_sample_events() -> None:
    assert call("auto_top_up_handler", "auto_top_up/get-auto-top-up.json")["statusCode"] == 200
    off = call("auto_top_up_handler", "auto_top_up/put-auto-top-up-off.json")
    assert off["statusCode"] == 200, off["body"]
    assert json.loads(off["body"])["state"] == "disabled"
    # An attempt the table does not hold (the sample's): nothing to charge, nothing failed.
    reply = call("top_up_charger_handler", "top_up_charger/attempt-admitted.json")
    assert reply == {"batchItemFailures": []}


def test_vm_limits_sample_events_run_in_order() -> None:
    set_by_customer = call("vm_limits_handler", "vm_limits/put-vm-limits.json")
    assert set_by_customer["statusCode"] == 200, set_by_customer["body"]
    raised_by_admin = call("vm_limits_handler", "vm_limits/put-vm-limits-admin-raise.json")
    assert raised_by_admin["statusCode"] == 403, raised_by_admin["body"]
    read = call("vm_limits_handler", "vm_limits/get-vm-limits.json")
    assert json.loads(read["body"])["default_daily_limit"] == "500"
    usage = call("balances_handler", "balances/usage-by-vm.json")
    assert usage["statusCode"] == 200, usage["body"]
    assert json.loads(usage["body"])["group_by"] == "vm"
