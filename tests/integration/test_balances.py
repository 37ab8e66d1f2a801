"""What a customer sees of their tokens, over the dev server with real JWTs: only their
own, paginated exactly, and in agreement with the ledger."""

from __future__ import annotations

import time
from typing import Any

import pytest

from local import identity
from local.devserver import DevServer
from tests.integration.helpers import assert_consistent, fund, http_json
from token_billing.store.ledger import Ledger
from token_billing.store.table_layout import customer_pk

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
    assert body["estimated_hours_remaining_exact"] == "4.345"
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


def test_dashboard_numbers_agree_with_the_ledger_for_a_seeded_history(
    dev_server: DevServer, ledger: Ledger, customer_id: str, ddb_local: Any
) -> None:
    from tests import stripe_events
    from tests.integration.test_ledger_stream import deliver, ledger_usage, stream_records
    from token_billing.domain.stripe_events import EventStores, apply_stripe_event
    from token_billing.store.order_records import Order
    from token_billing.store.orders import OrderStore
    from token_billing.store.top_up_store import TopUpStore

    store = OrderStore(ddb_local.client(), "LedgerTable")
    orders = []
    for index, package in enumerate(["growth", "starter"]):
        draft = Order(
            order_id=f"ord_{index:012x}seeded{index}",
            customer_id=customer_id,
            package_id=package,
            catalog_version="2026-11-01",
            price_cents={"growth": 4_900, "starter": 1_900}[package],
            currency="usd",
            tokens_mt={"growth": 6_000_000, "starter": 2_000_000}[package],
            bonus_mt={"growth": 500_000, "starter": 0}[package],
            status="pending",
            created_at=f"2026-11-25T10:0{index}:00.000000Z",
        )
        orders.append(store.create(draft, idempotency_key=None, request_hash="seed"))
    session = stripe_events.checkout_session(
        session_id="cs_seeded",
        customer_id=customer_id,
        order_id=orders[0].order_id,
        package_id="growth",
        amount_total=4_900,
    )
    assert (
        apply_stripe_event(
            {"type": "checkout.session.completed", "data": {"object": session}},
            EventStores(
                orders=store, ledger=ledger, top_ups=TopUpStore(ddb_local.client(), "LedgerTable")
            ),
        ).action
        == "credited"
    )
    fund(ledger, customer_id, 250_000, key="support")
    for index, (action, quantity) in enumerate(
        [
            ("vm_runtime", 4_000),
            ("ai_message", 300),
            ("screenshot", 51),
            ("api_call", 7),
            ("vm_runtime", 2_100),
        ]
    ):
        time.sleep(0.002)
        debit(customer_id, f"d{index}", [{"action": action, "quantity": quantity}])
    deliver(stream_records(ddb_local, customer_id))

    status, board = get(
        dev_server, f"/api/v1/customers/{customer_id}/dashboard", as_customer(customer_id)
    )
    assert status == 200, board
    account = assert_consistent(ledger, customer_id)
    assert board["balance"]["balance_mt"] == account.balance_mt == 6_500_000 + 250_000 - 6_186_200
    assert board["balance"]["low_balance"] is False  # 563.8 tokens
    assert board["balance"]["estimated_hours_remaining"] == 6  # 5.638 hours, rounded
    assert board["balance"]["estimated_hours_remaining_exact"] == "5.638"
    entries = sorted(
        ledger.iter_entries(customer_id), key=lambda e: e["created_at"]["S"], reverse=True
    )
    assert [t["id"] for t in board["recent_transactions"]] == [e["txn_id"]["S"] for e in entries]
    assert [t["amount_mt"] for t in board["recent_transactions"]] == [
        int(e["amount_mt"]["N"]) for e in entries
    ]
    assert {(o["id"], o["status"]) for o in board["recent_orders"]} == {
        (orders[0].order_id, "paid"),
        (orders[1].order_id, "pending"),
    }
    usage = {u["action"]: u["tokens_mt"] for u in board["usage_last_30_days"]}
    assert (
        usage
        == ledger_usage(ledger, customer_id)
        == {
            "vm_runtime": 6_100_000,
            "ai_message": 60_000,
            "screenshot": 25_500,
            "api_call": 700,
        }
    )
    assert sum(usage.values()) == account.used_mt
    # quick purchase: with 563.8 available every pack keeps the balance above 500
    assert [p["id"] for p in board["quick_purchase"]] == ["starter", "growth", "pro"]


def test_admin_exports_the_ledger_as_csv_in_pages(
    dev_server: DevServer, ledger: Ledger, customer_id: str
) -> None:
    import csv
    import io
    import urllib.request

    for index in range(5):
        fund(ledger, customer_id, 1_000 + index, key=f"g{index}")
        time.sleep(0.002)
    debit(customer_id, "d1", [{"action": "api_call", "quantity": "2.5"}])
    path = f"/api/v1/customers/{customer_id}/tokens/export"
    assert get(dev_server, path, as_customer(customer_id))[0] == 403  # admins only
    rows: list[dict[str, str]] = []
    cursor = ""
    for _ in range(10):
        request = urllib.request.Request(f"{dev_server.url}{path}?limit=4{cursor}")  # noqa: S310
        request.add_header("Authorization", f"Bearer {identity.mint(admin=True)}")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert response.headers["Content-Type"].startswith("text/csv")
            rows += list(csv.DictReader(io.StringIO(response.read().decode())))
            following = response.headers.get("X-Next-Cursor")
        if not following:
            break
        cursor = f"&cursor={following}"
    assert [row["amount_mt"] for row in rows] == ["1000", "1001", "1002", "1003", "1004", "-250"]
    assert rows[-1]["amount"] == "-0.25"
    assert rows[-1]["usage_by_action_mt"] == '{"api_call": 250}'
    assert (
        sum(int(row["amount_mt"]) for row in rows)
        == assert_consistent(ledger, customer_id).balance_mt
    )


def test_each_read_is_a_fixed_small_number_of_requests_never_n_plus_1(
    dev_server: DevServer, ledger: Ledger, customer_id: str
) -> None:
    from collections import Counter

    from token_billing import runtime

    for index in range(30):  # a long history must not mean more requests
        fund(ledger, customer_id, 1_000, key=f"g{index}")
    sent: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        sent[event_name.rsplit(".", 1)[-1]] += 1

    client = runtime.dynamodb_client()
    client.meta.events.register("before-call.dynamodb", count)
    token = as_customer(customer_id)
    try:
        expected = {
            f"/api/v1/customers/{customer_id}/tokens": {"Query": 1},
            f"/api/v1/customers/{customer_id}/tokens/transactions?limit=20": {"Query": 1},
            f"/api/v1/customers/{customer_id}/tokens/orders": {"Query": 1},
            f"/api/v1/customers/{customer_id}/dashboard": {"Query": 4},
        }
        for path, requests in expected.items():
            sent.clear()
            assert get(dev_server, path, token)[0] == 200
            assert dict(sent) == requests, path
    finally:
        client.meta.events.unregister("before-call.dynamodb", count)
