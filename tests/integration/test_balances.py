"""What a customer sees of their tokens, over the dev server with real JWTs: only their
own, paginated exactly, and in agreement with the ledger."""

from __future__ import annotations

import time
from typing import Any

import pytest

from local import identity
from local.devserver import DevServer
from tests.integration.helpers import assert_consistent, fund, http_json
from token_billing.ledger import Ledger
from token_billing.table_layout import customer_pk

pytestmark = pytest.mark.integration
READS = [
    "/api/v1/customers/{}/tokens",
    "/api/v1/customers/{}/tokens/transactions",
    "/api/v1/customers/{}/tokens/orders",
    "/api/v1/customers/{}/dashboard",
]


def get(server: DevServer, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
    return http_json(server.url, "GET", path, token=token)


def as_customer(customer_id: str) -> str:
    return identity.mint(customer_id=customer_id)


def debit(customer_id: str, key: str, usage: list[dict[str, Any]]) -> dict[str, Any]:
    import debit_handler

    from tests.conftest import fake_context

    reply: dict[str, Any] = debit_handler.lambda_handler(
        {"customer_id": customer_id, "idempotency_key": key, "usage": usage}, fake_context()
    )
    assert reply["ok"], reply
    return reply


@pytest.mark.parametrize("path", READS)
def test_a_customer_reads_only_their_own_tokens(
    dev_server: DevServer, ledger: Ledger, customer_id: str, path: str
) -> None:
    fund(ledger, customer_id, 1_000_000)
    other = customer_id + "_b"
    fund(ledger, other, 2_000_000)
    status, body = get(dev_server, path.format(customer_id), as_customer(customer_id))
    assert status == 200, body
    status, body = get(dev_server, path.format(other), as_customer(customer_id))
    assert (status, body) == (
        403,
        {
            "error": {
                "code": "forbidden",
                "message": "you may only access your own tokens",
                "retryable": False,
            }
        },
    )
    assert get(dev_server, path.format(customer_id), None) == (401, {"message": "Unauthorized"})
    expired = identity.mint(customer_id=customer_id, ttl_s=-10)
    assert get(dev_server, path.format(customer_id), expired)[0] == 401
    status, _ = get(dev_server, path.format(other), identity.mint(admin=True))
    assert status == 200


def test_balance_shows_the_account_and_legacy_plan_tier(
    dev_server: DevServer, ledger: Ledger, customer_id: str, ddb_local: Any
) -> None:
    fund(ledger, customer_id, 1_234_500)
    debit(customer_id, "d1", [{"action": "vm_runtime", "quantity": 800}])
    ddb_local.client().update_item(
        TableName="LedgerTable",
        Key={"PK": {"S": customer_pk(customer_id)}, "SK": {"S": "ACCOUNT"}},
        UpdateExpression="SET plan_tier = :tier",
        ExpressionAttributeValues={":tier": {"S": "pro_monthly"}},
    )
    status, body = get(dev_server, READS[0].format(customer_id), as_customer(customer_id))
    assert status == 200
    assert body["balance"] == body["available"] == "434.5"
    assert (body["balance_mt"], body["held_mt"], body["lifetime_used_mt"]) == (434_500, 0, 800_000)
    assert body["lifetime_granted"] == "1234.5"
    assert (body["estimated_hours_remaining"], body["low_balance"]) == (4, True)
    assert body["plan_tier"] == "pro_monthly"
    assert body["active_holds"] == []


def test_a_customer_without_tokens_reads_an_empty_account(
    dev_server: DevServer, customer_id: str
) -> None:
    status, body = get(dev_server, READS[0].format(customer_id), as_customer(customer_id))
    assert status == 200
    assert (body["balance"], body["low_balance"], body["plan_tier"]) == ("0", True, None)


def test_pagination_walks_1000_transactions_without_duplicates_or_gaps(
    dev_server: DevServer, ledger: Ledger, customer_id: str
) -> None:
    for index in range(1_000):
        fund(ledger, customer_id, 1_000 + index, key=f"g{index:04d}")
    token = as_customer(customer_id)
    seen: list[str] = []
    amounts: list[int] = []
    cursor = None
    pages = 0
    while True:
        path = f"/api/v1/customers/{customer_id}/tokens/transactions?limit=100"
        if cursor:
            path += f"&cursor={cursor}"
        status, page = get(dev_server, path, token)
        assert status == 200, page
        seen += [txn["id"] for txn in page["data"]]
        amounts += [txn["amount_mt"] for txn in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
        assert pages < 20
    assert len(seen) == len(set(seen)) == 1_000
    assert sorted(amounts) == list(range(1_000, 2_000))
    assert sum(amounts) == assert_consistent(ledger, customer_id).balance_mt


def test_transactions_filter_by_kind_and_time(
    dev_server: DevServer, ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 100_000, key="g1")
    time.sleep(0.01)
    debit(customer_id, "d1", [{"action": "api_call", "quantity": 10}])
    time.sleep(0.01)
    debit(customer_id, "d2", [{"action": "screenshot", "quantity": 2}])
    token = as_customer(customer_id)
    base = f"/api/v1/customers/{customer_id}/tokens/transactions"
    _, everything = get(dev_server, base, token)
    assert [txn["kind"] for txn in everything["data"]] == ["usage", "usage", "grant"]
    assert [txn["amount"] for txn in everything["data"]] == ["-1", "-1", "100"]
    assert everything["data"][1]["usage_by_action"] == {"api_call": "1"}
    _, usage = get(dev_server, base + "?kind=usage", token)
    assert len(usage["data"]) == 2
    middle = everything["data"][1]["created_at"]
    _, since = get(dev_server, base + f"?since={middle}", token)
    assert [txn["id"] for txn in since["data"]] == [txn["id"] for txn in everything["data"][:2]]
    _, until = get(dev_server, base + f"?until={middle}", token)
    assert [txn["id"] for txn in until["data"]] == [txn["id"] for txn in everything["data"][1:]]
    for bad in ["?kind=refund", "?limit=0", "?limit=101", "?cursor=garbage", "?since=yesterday"]:
        status, body = get(dev_server, base + bad, token)
        assert status == 400, bad
        assert body["error"]["code"] == "invalid_request"


def test_a_cursor_from_another_customer_is_refused(
    dev_server: DevServer, ledger: Ledger, customer_id: str
) -> None:
    other = customer_id + "_b"
    for index in range(3):
        fund(ledger, other, 10, key=f"g{index}")
    admin = identity.mint(admin=True)
    _, page = get(dev_server, f"/api/v1/customers/{other}/tokens/transactions?limit=1", admin)
    stolen = page["next_cursor"]
    status, body = get(
        dev_server,
        f"/api/v1/customers/{customer_id}/tokens/transactions?cursor={stolen}",
        as_customer(customer_id),
    )
    assert status == 400
    assert body["error"]["code"] == "invalid_request"


def test_admin_grants_are_their_own_ledger_kind_and_idempotent(
    dev_server: DevServer, ledger: Ledger, customer_id: str
) -> None:
    path = f"/api/v1/customers/{customer_id}/tokens/grants"
    body = {"amount": "250.5", "reason": "support: outage credit"}
    headers = {"Idempotency-Key": "ticket-4711"}
    admin = identity.mint(admin=True)
    status, grant = http_json(dev_server.url, "POST", path, body, token=admin, headers=headers)
    assert status == 201, grant
    assert (grant["amount"], grant["amount_mt"], grant["replayed"]) == ("250.5", 250_500, False)
    status, again = http_json(dev_server.url, "POST", path, body, token=admin, headers=headers)
    assert (status, again["transaction_id"], again["replayed"]) == (
        200,
        grant["transaction_id"],
        True,
    )
    assert assert_consistent(ledger, customer_id).granted_mt == 250_500
    (entry,) = ledger.iter_entries(customer_id)
    assert (entry["kind"]["S"], entry["reason"]["S"]) == ("grant", "support: outage credit")

    customer = as_customer(customer_id)
    status, refused = http_json(dev_server.url, "POST", path, body, token=customer, headers=headers)
    assert (status, refused["error"]["code"]) == (403, "forbidden")
    for bad_body, bad_headers in [
        ({"amount": "-5", "reason": "x" * 5}, headers),
        ({"amount": "0", "reason": "nothing"}, {"Idempotency-Key": "zero"}),
        ({"amount": "1.0001", "reason": "too fine"}, {"Idempotency-Key": "fine"}),
        ({"amount": "5", "reason": "no key"}, {}),
        ({"amount": "5", "reason": "x", "extra": 1}, headers),
    ]:
        status, error = http_json(
            dev_server.url, "POST", path, bad_body, token=admin, headers=bad_headers
        )
        assert status == 400, (bad_body, error)
    assert assert_consistent(ledger, customer_id).granted_mt == 250_500
