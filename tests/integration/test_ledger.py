"""Ledger operations against DynamoDB Local: each invariant of DESIGN.md, one by one."""

from __future__ import annotations

import time

import pytest

from local.dynamodb_local import DynamoDBLocal
from tests.integration.helpers import assert_consistent, fund
from token_billing.core.errors import CustomerNotFound, IdempotencyKeyReused, InsufficientTokens
from token_billing.store.codecs import decode_lines
from token_billing.store.ledger import Ledger
from token_billing.store.records import UsageCause
from token_billing.store.table_layout import customer_pk, entry_sk


def debit(ledger: Ledger, customer_id: str, key: str, amount_mt: int, request: str = "r"):  # type: ignore[no-untyped-def]
    return ledger.debit(
        customer_id=customer_id,
        idempotency_key=key,
        amount_mt=amount_mt,
        canonical_request=request,
        usage=UsageCause(lines=[], mt_by_action={}),
    )


def test_every_operation_keeps_balance_equal_to_the_sum_of_entries(
    ledger: Ledger, customer_id: str
) -> None:
    ledger.credit_purchase(
        customer_id=customer_id,
        order_id="ord_1",
        package_id="growth",
        tokens_mt=6_000_000,
        bonus_mt=500_000,
        catalog_version="v",
    )
    assert assert_consistent(ledger, customer_id).balance_mt == 6_500_000
    ledger.grant(
        customer_id=customer_id, idempotency_key="g", amount_mt=1_500, reason="x", granted_by="t"
    )
    debit(ledger, customer_id, "d1", 100_500)
    ledger.clawback(
        customer_id=customer_id,
        idempotency_key="re_1",
        amount_mt=3_250_000,
        canonical_request="refund",
        cause={},
    )
    account = assert_consistent(ledger, customer_id)
    assert account.balance_mt == 6_500_000 + 1_500 - 100_500 - 3_250_000
    assert (account.purchased_mt, account.bonus_mt, account.granted_mt) == (
        6_000_000,
        500_000,
        1_500,
    )
    assert (account.used_mt, account.clawed_back_mt, account.version) == (100_500, 3_250_000, 4)


def test_debit_never_takes_available_below_zero(ledger: Ledger, customer_id: str) -> None:
    fund(ledger, customer_id, 1_000)
    debit(ledger, customer_id, "d1", 1_000)
    with pytest.raises(InsufficientTokens) as refused:
        debit(ledger, customer_id, "d2", 1)
    assert (refused.value.details["balance_mt"], refused.value.details["available_mt"]) == (0, 0)
    assert assert_consistent(ledger, customer_id).balance_mt == 0


def test_clawback_may_go_negative_and_then_debits_fail_until_a_top_up(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 1_000)
    debit(ledger, customer_id, "d1", 800)
    ledger.clawback(
        customer_id=customer_id,
        idempotency_key="dp_1",
        amount_mt=1_000,
        canonical_request="dispute",
        cause={},
    )
    assert assert_consistent(ledger, customer_id).balance_mt == -800
    with pytest.raises(InsufficientTokens):
        debit(ledger, customer_id, "d2", 1)
    fund(ledger, customer_id, 1_000, key="topup")
    debit(ledger, customer_id, "d3", 200)
    assert assert_consistent(ledger, customer_id).balance_mt == 0


def test_each_operation_is_idempotent_by_its_key(ledger: Ledger, customer_id: str) -> None:
    for _ in range(3):
        ledger.credit_purchase(
            customer_id=customer_id,
            order_id="ord_1",
            package_id="starter",
            tokens_mt=2_000_000,
            bonus_mt=0,
            catalog_version="v",
        )
        fund(ledger, customer_id, 5_000, key="grant-1")
        debit(ledger, customer_id, "d1", 1_000)
        ledger.clawback(
            customer_id=customer_id,
            idempotency_key="re_1",
            amount_mt=500,
            canonical_request="refund",
            cause={},
        )
    assert assert_consistent(ledger, customer_id).balance_mt == 2_000_000 + 5_000 - 1_000 - 500
    assert len(list(ledger.iter_entries(customer_id))) == 4


def test_same_key_different_scope_or_customer_is_a_different_operation(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 5_000, key="k")
    debit(ledger, customer_id, "k", 1_000)  # a debit key does not collide with a grant key
    other = customer_id + "_b"
    fund(ledger, other, 5_000, key="k")  # nor with another customer's key
    assert assert_consistent(ledger, customer_id).balance_mt == 4_000
    assert assert_consistent(ledger, other).balance_mt == 5_000


def test_key_reuse_with_another_request_changes_nothing(ledger: Ledger, customer_id: str) -> None:
    fund(ledger, customer_id, 5_000)
    debit(ledger, customer_id, "d1", 1_000, request="a")
    with pytest.raises(IdempotencyKeyReused):
        debit(ledger, customer_id, "d1", 1_000, request="b")
    assert assert_consistent(ledger, customer_id).balance_mt == 4_000


def test_unknown_customer_gets_no_account(ledger: Ledger, customer_id: str) -> None:
    with pytest.raises(CustomerNotFound):
        debit(ledger, customer_id, "d1", 1)
    assert ledger.get_account(customer_id) is None
    assert list(ledger.iter_entries(customer_id)) == []


def test_entries_name_their_cause(ledger: Ledger, customer_id: str) -> None:
    """Invariant 5: order, grant reason, usage lines; entries are written once."""
    import debit_handler

    from tests.conftest import FakeLambdaContext

    ledger.credit_purchase(
        customer_id=customer_id,
        order_id="ord_9",
        package_id="pro",
        tokens_mt=15_000_000,
        bonus_mt=1_500_000,
        catalog_version="v",
    )
    fund(ledger, customer_id, 10, key="support-123")
    reply = debit_handler.lambda_handler(
        {
            "customer_id": customer_id,
            "idempotency_key": "batch-1",
            "usage": [
                {"action": "vm_runtime", "quantity": 3, "vm_id": "vm-1"},
                {"action": "api_call", "quantity": "0.25"},
            ],
        },
        FakeLambdaContext(),
    )
    assert reply["ok"], reply
    entries = {item["kind"]["S"]: item for item in ledger.iter_entries(customer_id)}
    assert entries["purchase"]["order_id"]["S"] == "ord_9"
    assert entries["purchase"]["package_id"]["S"] == "pro"
    assert entries["grant"]["reason"]["S"] == "test funding"
    usage = entries["usage"]
    assert usage["idempotency_key"]["S"] == "batch-1"
    assert decode_lines(usage["lines_z"]["B"]) == [
        ["vm_runtime", "3", "vm-1", 3_000],
        ["api_call", "0.25", None, 25],
    ]
    assert usage["usage_mt_by_action"]["M"] == {
        "vm_runtime": {"N": "3000"},
        "api_call": {"N": "25"},
    }
    assert int(usage["amount_mt"]["N"]) == -3_025


def test_entries_are_listed_newest_first_by_the_time_index(
    ledger: Ledger, customer_id: str, ddb_local: DynamoDBLocal
) -> None:
    fund(ledger, customer_id, 10_000)
    for index in range(5):
        time.sleep(0.001)  # distinct timestamps: same-instant entries have no defined order
        debit(ledger, customer_id, f"d{index}", 100 + index)
    response = ddb_local.client().query(
        TableName="LedgerTable",
        IndexName="ledger-by-time",
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": customer_pk(customer_id)}},
        ScanIndexForward=False,
    )
    amounts = [int(item["amount_mt"]["N"]) for item in response["Items"]]
    assert amounts == [-104, -103, -102, -101, -100, 10_000]
    assert "lines_z" not in response["Items"][0]  # the index leaves the lines out
    assert entry_sk("x").startswith("TXN#")
