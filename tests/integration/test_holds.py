"""Holds for running VMs on DynamoDB Local: reserve, settle, renew, release, expire."""

from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import fake_context
from tests.integration.helpers import assert_consistent, fund
from token_billing.domain import holds as vm_holds
from token_billing.store.holds import HoldLedger
from token_billing.store.ledger import Ledger

pytestmark = pytest.mark.integration
MINUTE_MT = 1_000  # vm_runtime: 1 token per minute


def call(payload: dict[str, Any]) -> dict[str, Any]:
    import debit_handler

    reply: dict[str, Any] = debit_handler.lambda_handler(payload, fake_context())
    return reply


def hold(
    customer_id: str, hold_id: str, tokens: int | str, expires_in_s: int = 900, vm: str = "vm-1"
) -> dict[str, Any]:
    return call(
        {
            "op": "hold",
            "customer_id": customer_id,
            "hold_id": hold_id,
            "amount": tokens,
            "expires_in_s": expires_in_s,
            "vm_id": vm,
        }
    )


def minutes(count: int | str, vm: str = "vm-1") -> list[dict[str, Any]]:
    return [{"action": "vm_runtime", "quantity": count, "vm_id": vm}]


def settle(customer_id: str, hold_id: str, used: int | str) -> dict[str, Any]:
    return call(
        {"op": "settle", "customer_id": customer_id, "hold_id": hold_id, "usage": minutes(used)}
    )


def renew(
    customer_id: str, hold_id: str, used: int | str, next_id: str, tokens: int
) -> dict[str, Any]:
    return call(
        {
            "op": "renew",
            "customer_id": customer_id,
            "hold_id": hold_id,
            "usage": minutes(used),
            "next_hold_id": next_id,
            "amount": tokens,
            "expires_in_s": 900,
            "vm_id": "vm-1",
        }
    )


def release(customer_id: str, hold_id: str) -> dict[str, Any]:
    return call({"op": "release", "customer_id": customer_id, "hold_id": hold_id})


def debit(customer_id: str, key: str, tokens_used: int) -> dict[str, Any]:
    return call({"customer_id": customer_id, "idempotency_key": key, "usage": minutes(tokens_used)})


def state(ledger: Ledger, customer_id: str) -> tuple[int, int, int]:
    account = assert_consistent(ledger, customer_id)
    return account.balance_mt, account.held_mt, account.available_mt


def test_a_hold_beyond_available_is_refused_and_moves_nothing(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 10 * MINUTE_MT)
    reply = hold(customer_id, "h1", 11)
    assert (reply["ok"], reply["error"]["code"]) == (False, "insufficient_tokens")
    assert reply["error"]["available_mt"] == 10_000
    assert state(ledger, customer_id) == (10_000, 0, 10_000)


def test_a_debit_cannot_spend_held_tokens(ledger: Ledger, customer_id: str) -> None:
    fund(ledger, customer_id, 10 * MINUTE_MT)
    assert hold(customer_id, "h1", 8)["ok"]
    assert state(ledger, customer_id) == (10_000, 8_000, 2_000)
    refused = debit(customer_id, "d1", 3)
    assert refused["error"]["code"] == "insufficient_tokens"
    assert debit(customer_id, "d2", 2)["ok"]
    assert state(ledger, customer_id) == (8_000, 8_000, 0)


def test_settle_captures_and_releases_in_one_transaction(ledger: Ledger, customer_id: str) -> None:
    fund(ledger, customer_id, 20 * MINUTE_MT)
    placed = hold(customer_id, "h1", 15)
    assert placed["ok"]
    assert placed["held"] == "15"
    assert placed["status"] == "active"
    reply = settle(customer_id, "h1", "9.5")
    assert reply["ok"], reply
    assert (reply["debited"], reply["released"], reply["late"], reply["replayed"]) == (
        "9.5",
        "5.5",
        False,
        False,
    )
    assert state(ledger, customer_id) == (10_500, 0, 10_500)
    entries = [e for e in ledger.iter_entries(customer_id) if e.get("hold_id")]
    assert len(entries) == 1
    assert entries[0]["hold_id"]["S"] == "h1"


def test_usage_above_the_hold_comes_from_available_or_is_refused_whole(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 20 * MINUTE_MT)
    hold(customer_id, "h1", 10)
    refused = settle(customer_id, "h1", 21)
    assert refused["error"]["code"] == "insufficient_tokens"
    assert state(ledger, customer_id) == (20_000, 10_000, 10_000)  # the hold is untouched
    reply = settle(customer_id, "h1", 14)
    assert (reply["debited_mt"], reply["released_mt"]) == (14_000, 0)
    assert state(ledger, customer_id) == (6_000, 0, 6_000)


def test_settle_renew_and_release_repeated_move_nothing_more(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 100 * MINUTE_MT)
    assert hold(customer_id, "h1", 15)["ok"]
    again = hold(customer_id, "h1", 15)
    assert again["ok"]
    assert again["replayed"]
    assert hold(customer_id, "h1", 16)["error"]["code"] == "idempotency_key_reused"
    first = renew(customer_id, "h1", 15, "h2", 15)
    assert (first["ok"], first["renewed"]) == (True, True), first
    for _ in range(2):
        replay = renew(customer_id, "h1", 15, "h2", 15)
        assert replay["renewed"]
        assert replay["replayed"]
        assert replay["transaction_id"] == first["transaction_id"]
    assert state(ledger, customer_id) == (85_000, 15_000, 70_000)
    done = settle(customer_id, "h2", 4)
    for _ in range(2):
        replay = settle(customer_id, "h2", 4)
        assert (replay["transaction_id"], replay["replayed"], replay["late"]) == (
            done["transaction_id"],
            True,
            False,
        )
    assert state(ledger, customer_id) == (81_000, 0, 81_000)
    assert hold(customer_id, "h3", 5)["ok"]
    assert release(customer_id, "h3")["released"] == "5"
    replay = release(customer_id, "h3")
    assert (replay["released_mt"], replay["replayed"]) == (5_000, True)  # the first reply
    assert state(ledger, customer_id) == (81_000, 0, 81_000)


def test_a_refused_renew_captures_and_keeps_the_old_hold_as_grace(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 20 * MINUTE_MT)
    hold(customer_id, "h1", 15)
    reply = renew(customer_id, "h1", 12, "h2", 15)  # 8 tokens left: the next 15 cannot be held
    assert (reply["ok"], reply["renewed"]) == (True, False), reply
    assert reply["debited"] == "12"
    assert reply["grace_until"]
    assert state(ledger, customer_id) == (8_000, 3_000, 5_000)  # 3 minutes of grace kept
    again = renew(customer_id, "h1", 12, "h2", 15)
    assert (again["renewed"], again["replayed"]) == (False, True)
    final = settle(customer_id, "h1", 2)  # the VM stopped after 2 grace minutes
    assert (final["debited_mt"], final["released_mt"]) == (2_000, 1_000)
    assert state(ledger, customer_id) == (6_000, 0, 6_000)


def test_a_renew_of_a_settled_hold_places_the_next_hold_it_announces(
    ledger: Ledger, customer_id: str
) -> None:
    """Found by the simulation (issue 24): a renew of a hold a settle had already closed
    billed the usage as a late debit and answered `renewed: true` with an expiry, but placed
    no next hold; the agent's later settle of it found none."""
    fund(ledger, customer_id, 50 * MINUTE_MT)
    hold(customer_id, "h1", 10)
    settle(customer_id, "h1", 3)
    reply = renew(customer_id, "h1", 2, "h2", 10)
    assert (reply["ok"], reply["renewed"], reply["debited"]) == (True, True, "2"), reply
    placed = HoldLedger(ledger._client, ledger._table).get_hold(customer_id, "h2")
    assert placed is not None
    assert (placed.status, placed.amount_mt, placed.expires_at) == (
        "active",
        10_000,
        reply["expires_at"],
    )
    assert state(ledger, customer_id) == (45_000, 10_000, 35_000)
    again = renew(customer_id, "h1", 2, "h2", 10)  # its repeat answers the same, moves nothing
    assert (again["renewed"], again["expires_at"], again["replayed"]) == (
        True,
        reply["expires_at"],
        True,
    )
    assert state(ledger, customer_id) == (45_000, 10_000, 35_000)


def test_a_late_renew_repeated_answers_its_first_reply_and_moves_nothing(
    ledger: Ledger, customer_id: str
) -> None:
    """Found by the simulation (issue 24): a renew of an expired hold whose next hold was not
    covered answered `renewed: false`; repeated after a top-up, it placed the next hold and
    answered `renewed: true`. The late debit and the next hold are one transaction now, and
    the entry records which it was."""
    fund(ledger, customer_id, 20 * MINUTE_MT)
    hold(customer_id, "h1", 10, expires_in_s=60)
    vm_holds.sweep_expired(
        HoldLedger(ledger._client, ledger._table), datetime.now(UTC) + timedelta(seconds=120)
    )
    first = renew(customer_id, "h1", 5, "h2", 30)  # 15 left after the usage: 30 not covered
    assert (first["ok"], first["renewed"], first["late"], first["debited"]) == (
        True,
        False,
        True,
        "5",
    ), first
    assert first["grace_until"] is None
    fund(ledger, customer_id, 100 * MINUTE_MT, key="top-up")
    again = renew(customer_id, "h1", 5, "h2", 30)
    assert (again["renewed"], again["replayed"], again["debited"]) == (False, True, "5"), again
    assert HoldLedger(ledger._client, ledger._table).get_hold(customer_id, "h2") is None
    assert state(ledger, customer_id) == (115_000, 0, 115_000)
    covered = renew(customer_id, "h2x", 1, "h3", 30)  # no such hold: nothing moves
    assert covered["error"]["code"] == "hold_not_found"


def test_a_late_renew_places_the_next_hold_in_the_same_transaction(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 50 * MINUTE_MT)
    hold(customer_id, "h1", 10, expires_in_s=60)
    vm_holds.sweep_expired(
        HoldLedger(ledger._client, ledger._table), datetime.now(UTC) + timedelta(seconds=120)
    )
    reply = renew(customer_id, "h1", 5, "h2", 30)
    assert (reply["renewed"], reply["late"], reply["debited"]) == (True, True, "5"), reply
    assert state(ledger, customer_id) == (45_000, 30_000, 15_000)
    again = renew(customer_id, "h1", 5, "h2", 30)
    assert (again["renewed"], again["expires_at"], again["replayed"]) == (
        True,
        reply["expires_at"],
        True,
    )
    assert state(ledger, customer_id) == (45_000, 30_000, 15_000)


def test_an_expired_hold_is_released_by_one_sweeper_run(
    ledger: HoldLedger, customer_id: str
) -> None:
    fund(ledger, customer_id, 50 * MINUTE_MT)
    assert hold(customer_id, "old", 10, expires_in_s=60)["ok"]
    assert hold(customer_id, "fresh", 10, expires_in_s=3600)["ok"]
    swept = vm_holds.sweep_expired(
        HoldLedger(ledger._client, ledger._table), datetime.now(UTC) + timedelta(seconds=120)
    )
    assert swept >= 1
    assert state(ledger, customer_id) == (50_000, 10_000, 40_000)
    old = HoldLedger(ledger._client, ledger._table).get_hold(customer_id, "old")
    assert old is not None
    assert old.status == "expired"


def test_a_late_settle_bills_as_a_debit_and_never_captures_twice(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 50 * MINUTE_MT)
    hold(customer_id, "h1", 10, expires_in_s=60)
    vm_holds.sweep_expired(
        HoldLedger(ledger._client, ledger._table), datetime.now(UTC) + timedelta(seconds=120)
    )
    late = settle(customer_id, "h1", 7)
    assert late["ok"]
    assert late["late"]
    assert late["debited"] == "7"
    again = settle(customer_id, "h1", 7)
    assert (again["replayed"], again["transaction_id"]) == (True, late["transaction_id"])
    assert state(ledger, customer_id) == (43_000, 0, 43_000)


def test_unknown_holds_and_bad_input_are_refused(ledger: Ledger, customer_id: str) -> None:
    fund(ledger, customer_id, 50 * MINUTE_MT)
    assert settle(customer_id, "nope", 1)["error"]["code"] == "hold_not_found"
    assert release(customer_id, "nope")["error"]["code"] == "hold_not_found"
    bad_payloads: list[dict[str, Any]] = [
        {
            "op": "hold",
            "customer_id": customer_id,
            "hold_id": "h",
            "amount": 0,
            "expires_in_s": 900,
        },
        {
            "op": "hold",
            "customer_id": customer_id,
            "hold_id": "h",
            "amount": "1.0001",
            "expires_in_s": 900,
        },
        {"op": "hold", "customer_id": customer_id, "hold_id": "h", "amount": 5, "expires_in_s": 10},
        {
            "op": "hold",
            "customer_id": customer_id,
            "hold_id": "h",
            "amount": 5,
            "expires_in_s": "900",
        },
        {"op": "hold", "customer_id": customer_id, "amount": 5, "expires_in_s": 900},
        {
            "op": "renew",
            "customer_id": customer_id,
            "hold_id": "h",
            "usage": minutes(1),
            "next_hold_id": "h",
            "amount": 5,
            "expires_in_s": 900,
        },
        {"op": "teleport", "customer_id": customer_id},
    ]
    for bad in bad_payloads:
        reply = call(bad)
        assert reply["error"]["code"] == "invalid_request", (bad, reply)
    assert state(ledger, customer_id) == (50_000, 0, 50_000)


def test_20_vms_and_concurrent_debits_keep_every_invariant(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 600 * MINUTE_MT)
    floor_violations: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            account = ledger.get_account(customer_id)
            if account is not None and account.available_mt < 0:
                floor_violations.append(account.available_mt)

    def vm(index: int) -> int:
        rng = random.Random(index)
        current = f"vm{index}-h0"
        if not hold(customer_id, current, 15, vm=f"vm-{index}")["ok"]:
            return 0
        for period in range(1, 4):
            following = f"vm{index}-h{period}"
            reply = renew(customer_id, current, rng.randint(5, 15), following, 15)
            assert reply["ok"] or reply["error"]["code"] == "insufficient_tokens", reply
            if not reply.get("renewed"):
                break
            current = following
        final = settle(customer_id, current, rng.randint(1, 15))
        assert final["ok"] or final["error"]["code"] == "insufficient_tokens", final
        if not final["ok"]:
            release(customer_id, current)
        return 1

    def agent(index: int) -> None:
        for batch in range(10):
            reply = debit(customer_id, f"agent{index}-{batch}-{uuid.uuid4().hex[:6]}", 3)
            assert reply["ok"] or reply["error"]["code"] == "insufficient_tokens"

    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(8) as pool:
        vms = pool.map(vm, range(20))
        agents = pool.map(agent, range(5))
        assert sum(vms) > 0
        list(agents)
    stop.set()
    watcher.join(timeout=5)
    assert floor_violations == []
    balance, held, available = state(ledger, customer_id)
    assert held == 0  # every VM settled or released its last hold
    assert available == balance >= 0


def test_the_sweeper_function_on_its_sample_event(ledger: Ledger, customer_id: str) -> None:
    import holds_sweeper_handler

    from tests.conftest import load_event

    fund(ledger, customer_id, 20 * MINUTE_MT)
    hold(customer_id, "h1", 10, expires_in_s=60)
    reply = holds_sweeper_handler.lambda_handler(
        load_event("holds_sweeper/scheduled.json"), fake_context()
    )
    assert reply == {"released": 0}  # not expired yet
    assert state(ledger, customer_id) == (20_000, 10_000, 10_000)
