"""Issue 22: every function's AWS calls are held to its IAM role in template.yaml, in the
integration tests and in the dev server; a call the role does not allow fails as in AWS.

The whole suite runs with the check on (tests/integration/conftest.py installs it); these
tests prove it is on, and that a policy missing one action fails that function's own test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import iam_check
from local.devserver import DevServer
from local.template import ROOT, TEMPLATE_PATH, load_template
from tests.conftest import fake_context
from tests.integration.helpers import fund
from tests.template_copies import without_action
from token_billing import runtime
from token_billing.store.ledger import Ledger

TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/LedgerTable"
CHARGER_TEST = (
    "tests/integration/test_auto_top_up.py::"
    "test_authentication_required_pauses_with_a_link_and_paying_through_it_clears_the_pause"
)


def test_a_policy_missing_one_action_fails_that_functions_test_with_access_denied(
    tmp_path: Path,
) -> None:
    """The recovery Checkout's session link is a PutItem of the charger: without it in the
    charger's policy, the charger's own integration test fails as the deployed stack would."""
    copy = tmp_path / "template.yaml"
    copy.write_text(
        without_action(
            TEMPLATE_PATH.read_text(),
            "TopUpChargerFunction",
            "AttemptsAndOrders",
            "dynamodb:PutItem",
        )
    )
    environment = {**os.environ, iam_check.IAM_TEMPLATE_ENV: str(copy)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", CHARGER_TEST, "-x", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-4000:]
    assert "1 failed" in output, output[-4000:]
    assert (
        "User: arn:aws:sts::123456789012:assumed-role/TopUpChargerFunctionRole/"
        f"TopUpChargerFunction is not authorized to perform: dynamodb:PutItem on resource: "
        f"{TABLE_ARN} because no identity-based policy allows the dynamodb:PutItem action"
    ) in output, output[-4000:]
    assert "IAM (local check): TopUpChargerFunction: AccessDeniedException" in output


def test_the_suite_runs_with_every_handler_held_to_its_role(
    ledger: Ledger, customer_id: str
) -> None:
    import debit_handler
    import top_up_charger_handler

    assert getattr(debit_handler.lambda_handler, "__local_iam_function__", None) == "DebitFunction"
    assert (
        getattr(top_up_charger_handler.lambda_handler, "__local_iam_function__", None)
        == "TopUpChargerFunction"
    )
    # The read-only balances role may not write: DynamoDB Local never sees the grant.
    with iam_check.acting_as("BalancesFunction"), pytest.raises(ClientError) as refused:
        fund(runtime.default_ledger(), customer_id, 1_000)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "BalancesFunction is not authorized to perform: dynamodb:UpdateItem" in str(
        refused.value
    )
    assert ledger.get_account(customer_id) is None
    # The debit function may debit: the same kind of write goes through under its role.
    fund(ledger, customer_id, 5_000)
    reply = debit_handler.lambda_handler(
        {
            "customer_id": customer_id,
            "idempotency_key": "iam-1",
            "usage": [{"action": "api_call", "quantity": 1}],
        },
        fake_context(),
    )
    assert reply["ok"] is True, reply


def test_the_dev_server_runs_each_function_under_its_own_role(
    dev_server: DevServer, monkeypatch: pytest.MonkeyPatch, customer_id: str
) -> None:
    key = {"PK": {"S": f"CUST#{customer_id}"}, "SK": {"S": "ACCOUNT"}}

    def write_the_account(event: Any, context: Any) -> None:
        runtime.dynamodb_client().put_item(TableName="LedgerTable", Item=key)

    packages = dev_server.functions["PackagesFunction"]
    monkeypatch.setattr(packages, "_handler", write_the_account)
    with pytest.raises(ClientError, match="PackagesFunction is not authorized to perform"):
        packages.invoke({})


def test_the_check_reads_the_template_the_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "template.yaml"
    copy.write_text(
        without_action(
            TEMPLATE_PATH.read_text(), "BalancesFunction", "ReadLedger", "dynamodb:Query"
        )
    )
    monkeypatch.setenv(iam_check.IAM_TEMPLATE_ENV, str(copy))
    check = iam_check.IamCheck(iam_check.template_path())
    assert set(check.roles) == set(load_template().functions())
    assert not check.roles["BalancesFunction"].allows("dynamodb:Query", TABLE_ARN)
    assert check.roles["BalancesFunction"].allows("dynamodb:GetItem", TABLE_ARN)
