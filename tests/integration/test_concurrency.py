"""Concurrent callers against DynamoDB Local: races decide nothing but the order."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conftest import FakeLambdaContext
from tests.integration.helpers import assert_consistent, fund
from token_billing.store.ledger import Ledger

THREADS = 20
DEBITS_PER_THREAD = 50
DEBIT = [{"action": "screenshot", "quantity": 3}]  # 1.5 tokens = 1,500 mt
DEBIT_MT = 1_500


def invoke_debit(payload: dict[str, Any]) -> dict[str, Any]:
    import debit_handler

    reply: dict[str, Any] = debit_handler.lambda_handler(payload, FakeLambdaContext())
    return reply


def test_20_threads_x_50_debits_exactly_n_succeed(ledger: Ledger, customer_id: str) -> None:
    covered = 437  # the balance covers exactly this many of the 1,000 debits
    fund(ledger, customer_id, covered * DEBIT_MT)

    def agent(thread: int) -> Counter[str]:
        outcomes: Counter[str] = Counter()
        for index in range(DEBITS_PER_THREAD):
            reply = invoke_debit(
                {
                    "customer_id": customer_id,
                    "idempotency_key": f"t{thread}-d{index}",
                    "usage": DEBIT,
                }
            )
            outcomes["ok" if reply["ok"] else reply["error"]["code"]] += 1
        return outcomes

    with ThreadPoolExecutor(THREADS) as pool:
        totals = sum(pool.map(agent, range(THREADS)), Counter())

    assert totals == {"ok": covered, "insufficient_tokens": THREADS * DEBITS_PER_THREAD - covered}
    account = assert_consistent(ledger, customer_id)
    assert (account.balance_mt, account.available_mt) == (0, 0)
    assert account.used_mt == covered * DEBIT_MT
    assert len(list(ledger.iter_entries(customer_id))) == covered + 1  # + the funding grant


def test_same_key_sent_10_times_concurrently_moves_tokens_once(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 100_000)
    payload = {"customer_id": customer_id, "idempotency_key": "once", "usage": DEBIT}
    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda _: invoke_debit(dict(payload)), range(10)))

    assert all(reply["ok"] for reply in replies), replies
    assert len({reply["transaction_id"] for reply in replies}) == 1
    assert sorted(reply["replayed"] for reply in replies) == [False] + [True] * 9
    assert {reply["debited_mt"] for reply in replies} == {DEBIT_MT}
    assert assert_consistent(ledger, customer_id).balance_mt == 100_000 - DEBIT_MT


def test_concurrent_credits_and_debits_keep_the_ledger_exact(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 10_000)

    def work(index: int) -> bool:
        if index % 4 == 0:
            fund(ledger, customer_id, 3_000, key=f"grant-{index}")
            return True
        reply = invoke_debit(
            {"customer_id": customer_id, "idempotency_key": f"d{index}", "usage": DEBIT}
        )
        return bool(reply["ok"])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(200)))

    account = assert_consistent(ledger, customer_id)
    debits_ok = sum(results) - 50  # 50 grants
    assert account.balance_mt == 10_000 + 50 * 3_000 - debits_ok * DEBIT_MT
    assert account.balance_mt >= 0
