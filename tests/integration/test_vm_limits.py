"""Per-VM daily limits (issue 25) on DynamoDB Local, through the debit function's handler:
the VM's day counter moves in the same transaction as the balance, so racing agents of one
VM never pass the limit together; holds, settles and renews never charge a VM past its
limit in a UTC day (the ledger's clock drives the day); a refusal moves nothing and says
why; replays answer their first reply whatever the limits are now; a customer without
limits sends exactly the one transaction it always did."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import fake_context
from tests.integration.helpers import assert_consistent, fund
from token_billing import runtime
from token_billing.core.clock import iso_utc
from token_billing.store.codecs import decode_lines
from token_billing.store.ledger import Ledger
from token_billing.store.table_layout import vm_day_sk
from token_billing.store.vm_limits import VmLimitSettings, VmLimitStore

pytestmark = pytest.mark.integration
TOKEN_MT = 1_000
DAY_ONE = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)


def call(payload: dict[str, Any]) -> dict[str, Any]:
    import debit_handler

    reply: dict[str, Any] = debit_handler.lambda_handler(payload, fake_context())
    return reply


def minutes(count: int, vm: str | None = "vm-1") -> list[dict[str, Any]]:
    line: dict[str, Any] = {"action": "vm_runtime", "quantity": count}
    if vm is not None:
        line["vm_id"] = vm
    return [line]


def debit(customer: str, key: str, tokens: int, vm: str | None = "vm-1") -> dict[str, Any]:
    return call({"customer_id": customer, "idempotency_key": key, "usage": minutes(tokens, vm)})


def hold_op(customer: str, hold_id: str, tokens: int, vm: str = "vm-1") -> dict[str, Any]:
    return call(
        {
            "op": "hold",
            "customer_id": customer,
            "hold_id": hold_id,
            "amount": tokens,
            "expires_in_s": 3600,
            "vm_id": vm,
        }
    )


def settle_op(customer: str, hold_id: str, used: int) -> dict[str, Any]:
    return call(
        {"op": "settle", "customer_id": customer, "hold_id": hold_id, "usage": minutes(used)}
    )


def renew_op(customer: str, hold_id: str, used: int, next_id: str, tokens: int) -> dict[str, Any]:
    return call(
        {
            "op": "renew",
            "customer_id": customer,
            "hold_id": hold_id,
            "usage": minutes(used),
            "next_hold_id": next_id,
            "amount": tokens,
            "expires_in_s": 3600,
            "vm_id": "vm-1",
        }
    )


def set_limits(
    ledger: Ledger, customer: str, default: int | None, **per_vm: int | None
) -> VmLimitSettings:
    store = VmLimitStore(ledger._client, "LedgerTable")
    current = store.get(customer, consistent=True)
    settings = VmLimitSettings(
        None if default is None else default * TOKEN_MT,
        {vm.replace("_", "-"): None if t is None else t * TOKEN_MT for vm, t in per_vm.items()},
    )
    written = store.put(customer, settings, expected_version=current.version if current else 0)
    runtime.default_vm_limits()._entries.clear()  # as if the refresh period had passed
    return written


class Clock:
    """The ledger's clock: the UTC day a write counts on."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> str:
        return iso_utc(self.now)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(DAY_ONE)
    monkeypatch.setattr(runtime.default_ledger(), "_clock", fake)
    return fake


def usage_by_vm_and_day(ledger: Ledger, customer: str) -> dict[tuple[str | None, str], int]:
    """The ledger's usage entries summed by (vm, UTC day of the entry)."""
    totals: dict[tuple[str | None, str], int] = {}
    for item in ledger.iter_entries(customer):
        if item["kind"]["S"] != "usage":
            continue
        day = item["created_at"]["S"][:10]
        for _, _, vm_id, cost_mt in decode_lines(bytes(item["lines_z"]["B"])):
            key = (vm_id if isinstance(vm_id, str) else None, day)
            totals[key] = totals.get(key, 0) + int(str(cost_mt))
    return totals


def counter(ledger: Ledger, customer: str, day: str, vm: str) -> dict[str, Any]:
    item = ledger._client.get_item(
        TableName="LedgerTable",
        Key={"PK": {"S": f"CUST#{customer}"}, "SK": {"S": vm_day_sk(day, vm)}},
        ConsistentRead=True,
    ).get("Item", {})
    return dict(item)


# ---- racing agents ---------------------------------------------------------------------


def test_8_agents_of_one_vm_racing_a_100_token_limit_spend_exactly_100(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 10_000 * TOKEN_MT)
    set_limits(ledger, customer_id, 100)
    barrier = threading.Barrier(8)

    def agent(index: int) -> list[dict[str, Any]]:
        barrier.wait()
        return [debit(customer_id, f"a{index}-{n}", 5) for n in range(5)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = [reply for batch in pool.map(agent, range(8)) for reply in batch]

    succeeded = [reply for reply in replies if reply["ok"]]
    refused = [reply["error"] for reply in replies if not reply["ok"]]
    assert len(succeeded) == 20
    assert len(refused) == 20
    assert {error["code"] for error in refused} == {"vm_limit_reached"}
    assert all(error["retryable"] is False for error in refused)
    assert all(error["limit_mt"] == 100 * TOKEN_MT for error in refused)
    assert all(error["spent_today_mt"] == 100 * TOKEN_MT for error in refused)
    account = assert_consistent(ledger, customer_id)
    assert account.balance_mt == 9_900 * TOKEN_MT  # nothing moved for the refused ones

    # Another VM of the same customer keeps spending, under its own (default) limit.
    assert debit(customer_id, "vm2-1", 5, vm="vm-2")["ok"]
    assert debit(customer_id, "vm1-again", 5)["error"]["code"] == "vm_limit_reached"
    assert assert_consistent(ledger, customer_id).balance_mt == 9_895 * TOKEN_MT


def test_a_refusal_names_the_limit_what_was_spent_and_the_reset_and_moves_nothing(
    ledger: Ledger, customer_id: str, clock: Clock
) -> None:
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    set_limits(ledger, customer_id, None, vm_1=30)
    assert debit(customer_id, "k1", 25)["ok"]
    before = assert_consistent(ledger, customer_id)
    error = debit(customer_id, "k2", 10)["error"]
    assert error["code"] == "vm_limit_reached"
    assert (error["vm_id"], error["limit"], error["spent_today"]) == ("vm-1", "30", "25")
    assert (error["requested"], error["day"]) == ("10", "2026-12-01")
    assert error["resets_at"] == "2026-12-02T00:00:00Z"
    after = assert_consistent(ledger, customer_id)
    assert (after.balance_mt, after.version) == (before.balance_mt, before.version)
    assert counter(ledger, customer_id, "2026-12-01", "vm-1")["spent_mt"] == {"N": "25000"}
    # The day is marked refused once (the ledger stream makes one VmLimitReached of it).
    assert "limit_reached_at" in counter(ledger, customer_id, "2026-12-01", "vm-1")
    # A VM without a limit (no default) is not counted at all.
    assert debit(customer_id, "other", 100, vm="vm-9")["ok"]
    assert counter(ledger, customer_id, "2026-12-01", "vm-9") == {}


def test_a_debit_larger_than_the_whole_limit_is_refused_on_a_fresh_day(
    ledger: Ledger, customer_id: str, clock: Clock
) -> None:
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    set_limits(ledger, customer_id, 10)
    error = debit(customer_id, "big", 11)["error"]
    assert (error["code"], error["spent_today_mt"]) == ("vm_limit_reached", 0)
    assert debit(customer_id, "exact", 10)["ok"]  # the limit itself may be spent


def test_the_next_utc_day_spends_again(ledger: Ledger, customer_id: str, clock: Clock) -> None:
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    set_limits(ledger, customer_id, 20)
    assert debit(customer_id, "d1-a", 20)["ok"]
    assert debit(customer_id, "d1-b", 1)["error"]["code"] == "vm_limit_reached"
    clock.now = DAY_ONE + timedelta(hours=1)  # 2026-12-02T00:00Z
    assert debit(customer_id, "d2-a", 20)["ok"]
    assert debit(customer_id, "d2-b", 1)["error"]["resets_at"] == "2026-12-03T00:00:00Z"
    assert usage_by_vm_and_day(ledger, customer_id) == {
        ("vm-1", "2026-12-01"): 20 * TOKEN_MT,
        ("vm-1", "2026-12-02"): 20 * TOKEN_MT,
    }


# ---- holds, settles, renews ---------------------------------------------------------------


def test_a_hold_must_fit_in_what_the_vm_may_still_spend_today(
    ledger: Ledger, customer_id: str, clock: Clock
) -> None:
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    set_limits(ledger, customer_id, 50)
    assert debit(customer_id, "k1", 30)["ok"]
    refused = hold_op(customer_id, "h-big", 21)
    assert refused["error"]["code"] == "vm_limit_reached"
    assert refused["error"]["spent_today"] == "30"
    assert hold_op(customer_id, "h-fits", 20)["ok"]
    assert assert_consistent(ledger, customer_id).held_mt == 20 * TOKEN_MT
    # A hold is admitted against the limit but spends nothing: the counter did not move.
    assert counter(ledger, customer_id, "2026-12-01", "vm-1")["spent_mt"] == {"N": "30000"}


def test_settle_counts_its_whole_cost_and_is_refused_past_the_limit(
    ledger: Ledger, customer_id: str, clock: Clock
) -> None:
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    set_limits(ledger, customer_id, 50)
    assert hold_op(customer_id, "h1", 40)["ok"]
    assert debit(customer_id, "k1", 20)["ok"]  # spending on the side while the VM runs
    # 35 minutes used: 20 + 35 > 50, so the settle is refused whole and the hold stays.
    refused = settle_op(customer_id, "h1", 35)
    assert refused["error"]["code"] == "vm_limit_reached"
    account = assert_consistent(ledger, customer_id)
    assert (account.balance_mt, account.held_mt) == (980 * TOKEN_MT, 40 * TOKEN_MT)
    # Usage past the hold counts too: 30 of a 25-token hold.
    assert settle_op(customer_id, "h1", 30)["ok"]
    assert counter(ledger, customer_id, "2026-12-01", "vm-1")["spent_mt"] == {"N": "50000"}


def test_a_renew_whose_next_hold_does_not_fit_captures_and_keeps_the_old_hold(
    ledger: Ledger, customer_id: str, clock: Clock
) -> None:
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    set_limits(ledger, customer_id, 50)
    assert hold_op(customer_id, "h1", 30)["ok"]
    reply = renew_op(customer_id, "h1", 30, "h2", 30)  # 30 spent + a 30 hold > 50
    assert reply["ok"], reply
    assert (reply["renewed"], reply["reason"], reply["debited"]) == (
        False,
        "vm_limit_reached",
        "30",
    )
    assert reply["grace_until"]
    # The replay answers the same, whatever the limit says now.
    set_limits(ledger, customer_id, 1_000)
    again = renew_op(customer_id, "h1", 30, "h2", 30)
    assert again == {**reply, "replayed": True}
    assert_consistent(ledger, customer_id)


def test_a_renew_that_fits_moves_the_counter_by_its_usage_only(
    ledger: Ledger, customer_id: str, clock: Clock
) -> None:
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    set_limits(ledger, customer_id, 100)
    assert hold_op(customer_id, "h1", 30)["ok"]
    reply = renew_op(customer_id, "h1", 30, "h2", 30)
    assert reply["renewed"] is True, reply
    assert counter(ledger, customer_id, "2026-12-01", "vm-1")["spent_mt"] == {"N": "30000"}


def test_a_late_settle_counts_on_the_day_it_is_billed(
    ledger: Ledger, customer_id: str, clock: Clock
) -> None:
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    set_limits(ledger, customer_id, 40)
    assert hold_op(customer_id, "h1", 30)["ok"]
    assert call({"op": "release", "customer_id": customer_id, "hold_id": "h1"})["ok"]
    clock.now = DAY_ONE + timedelta(hours=2)
    assert debit(customer_id, "d2", 30)["ok"]
    late = settle_op(customer_id, "h1", 20)  # billed as a debit on day two: 30 + 20 > 40
    assert late["error"]["code"] == "vm_limit_reached"
    assert settle_op(customer_id, "h1", 10)["late"] is True


# Ops of one agent on one VM under a 60-token limit, mixed at random across a UTC midnight.
MIX_LIMIT = 60


def test_whatever_the_mix_a_vm_is_never_charged_past_its_limit_in_a_utc_day(
    ledger: Ledger, customer_id: str, clock: Clock
) -> None:
    fund(ledger, customer_id, 100_000 * TOKEN_MT)
    set_limits(ledger, customer_id, MIX_LIMIT)
    rng = random.Random(25)
    active: list[str] = []
    ops: dict[str, Callable[[int], dict[str, Any]]] = {
        "debit": lambda n: debit(customer_id, f"m{n}", rng.randint(1, 25)),
        "hold": lambda n: hold_op(customer_id, f"h{n}", rng.randint(1, 40)),
    }
    refusals = successes = 0
    for step in range(120):
        clock.now = DAY_ONE + timedelta(minutes=2 * step)  # 23:00 to 02:58: crosses midnight
        choice = rng.choice(["debit", "hold", "settle", "renew", "release"])
        if choice in ops or not active:
            reply = ops["hold" if choice == "hold" else "debit"](step)
            if choice == "hold" and reply["ok"]:
                active.append(f"h{step}")
        elif choice == "settle":
            reply = settle_op(customer_id, active.pop(0), rng.randint(1, 50))
        elif choice == "renew":
            reply = renew_op(customer_id, active.pop(0), rng.randint(1, 50), f"r{step}", 10)
            if reply.get("renewed"):
                active.append(f"r{step}")
        else:
            reply = call({"op": "release", "customer_id": customer_id, "hold_id": active.pop(0)})
        if reply["ok"]:
            successes += 1
        else:
            assert reply["error"]["code"] == "vm_limit_reached", reply
            refusals += 1
        assert_consistent(ledger, customer_id)
    spent = usage_by_vm_and_day(ledger, customer_id)
    assert set(spent) == {("vm-1", "2026-12-01"), ("vm-1", "2026-12-02")}
    assert all(mt <= MIX_LIMIT * TOKEN_MT for mt in spent.values()), spent
    for (_, day), mt in spent.items():
        assert counter(ledger, customer_id, day, "vm-1")["spent_mt"] == {"N": str(mt)}
    assert refusals  # the mix did meet the limit
    assert successes


# ---- replays -----------------------------------------------------------------------------


def test_a_replay_answers_its_first_reply_even_after_the_limit_was_lowered(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    first = debit(customer_id, "k1", 40)
    assert first["ok"]
    set_limits(ledger, customer_id, 10)
    assert debit(customer_id, "k1", 40) == {**first, "replayed": True}
    assert assert_consistent(ledger, customer_id).balance_mt == 960 * TOKEN_MT


def test_a_batch_billing_several_limited_vms_is_refused_unless_it_is_a_replay(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    lines = [*minutes(5, "vm-1"), *minutes(5, "vm-2"), *minutes(5, None)]
    first = call({"customer_id": customer_id, "idempotency_key": "multi", "usage": lines})
    assert first["ok"]
    set_limits(ledger, customer_id, 100)
    again = call({"customer_id": customer_id, "idempotency_key": "multi", "usage": lines})
    assert again == {**first, "replayed": True}
    new = call({"customer_id": customer_id, "idempotency_key": "multi-2", "usage": lines})
    assert new["error"]["code"] == "invalid_request"
    assert "one batch per VM" in new["error"]["message"]
    # One limited VM and lines naming none: only that VM's lines count.
    one = [*minutes(5, "vm-1"), *minutes(7, None)]
    assert call({"customer_id": customer_id, "idempotency_key": "one", "usage": one})["ok"]
    day = datetime.now(UTC).date().isoformat()
    assert counter(ledger, customer_id, day, "vm-1")["spent_mt"] == {"N": "5000"}
    assert assert_consistent(ledger, customer_id).balance_mt == 973 * TOKEN_MT


# ---- what it costs ---------------------------------------------------------------------


class SentRequests:
    """Every DynamoDB request the handlers' client sends, with its parameters."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        events = runtime.dynamodb_client().meta.events
        events.register("provide-client-params.dynamodb", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.sent.append((model.name, params))

    def names(self) -> list[str]:
        return [name for name, _ in self.sent]


def test_without_limits_a_debit_sends_one_transaction_of_the_same_two_items(
    ledger: Ledger, customer_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    cache = runtime.default_vm_limits()
    seconds = [1_000.0]
    monkeypatch.setattr(cache, "_clock", lambda: seconds[0])
    sent = SentRequests()
    for n in range(5):
        assert debit(customer_id, f"k{n}", 1)["ok"]
    # Learning that the customer has no limits: one read, then never again in the period.
    assert sent.names() == ["GetItem"] + ["TransactWriteItems"] * 5
    for _, params in sent.sent[1:]:
        items = params["TransactItems"]
        assert [next(iter(item)) for item in items] == ["Update", "Put"]
        assert [
            next(iter(item.values()))["Key" if "Update" in item else "Item"]["SK"]["S"][:4]
            for item in items
        ] == ["ACCO", "TXN#"]
    seconds[0] += 59
    assert debit(customer_id, "k5", 1)["ok"]
    seconds[0] += 2  # past the refresh period: one more read, then one per period again
    assert debit(customer_id, "k6", 1)["ok"]
    assert debit(customer_id, "k7", 1)["ok"]
    assert sent.names()[6:] == ["TransactWriteItems", "GetItem"] + ["TransactWriteItems"] * 2


def test_with_a_limit_a_debit_sends_one_transaction_of_one_more_item(
    ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    set_limits(ledger, customer_id, 100)
    assert debit(customer_id, "warm", 1)["ok"]  # learns the limits
    sent = SentRequests()
    assert debit(customer_id, "k1", 1)["ok"]
    assert sent.names() == ["TransactWriteItems"]
    items = sent.sent[0][1]["TransactItems"]
    assert [next(iter(item)) for item in items] == ["Update", "Put", "Update"]
    assert items[2]["Update"]["Key"]["SK"]["S"].startswith("VMDAY#")
    assert items[2]["Update"]["ConditionExpression"] == (
        "attribute_not_exists(spent_mt) OR spent_mt <= :room"
    )


def test_a_lowered_limit_binds_once_the_container_refreshes(
    ledger: Ledger, customer_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    set_limits(ledger, customer_id, 100)
    cache = runtime.default_vm_limits()
    seconds = [5_000.0]
    monkeypatch.setattr(cache, "_clock", lambda: seconds[0])
    assert debit(customer_id, "k1", 30)["ok"]
    store = VmLimitStore(ledger._client, "LedgerTable")
    current = store.get(customer_id, consistent=True)
    assert current is not None
    store.put(
        customer_id,
        VmLimitSettings(40 * TOKEN_MT, current.limits_mt),
        expected_version=current.version,
    )
    assert debit(customer_id, "k2", 30)["ok"]  # this container still has 100
    seconds[0] += 60
    assert debit(customer_id, "k3", 30)["error"]["limit"] == "40"


def test_with_credentials_every_line_of_an_op_counts_for_the_credentials_vm(
    ledger: Ledger, customer_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import time

    from token_billing.domain.agent_credentials import CredentialKeys, mint_credential
    from token_billing.integrations.agent_credential_keys import forget_keys

    keys = {"current": "k1", "k1": "k" * 40}
    monkeypatch.setenv("REQUIRE_AGENT_CREDENTIALS", "true")
    monkeypatch.setenv("STAGE", "local")
    monkeypatch.setenv("AGENT_CREDENTIAL_KEYS", json.dumps(keys))
    forget_keys()
    credential = mint_credential(
        CredentialKeys.from_json(json.dumps(keys)),
        customer_id=customer_id,
        vm_id="vm-1",
        now_s=int(time.time()),
        ttl_s=600,
    )
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    set_limits(ledger, customer_id, None, vm_1=10)
    try:
        # Lines that name no VM are still this VM's spending: a limit cannot be dodged.
        unlabeled = {
            "customer_id": customer_id,
            "usage": minutes(6, None),
            "credential": credential,
        }
        assert call({**unlabeled, "idempotency_key": "u1"})["ok"]
        refused = call({**unlabeled, "idempotency_key": "u2"})
        assert (refused["error"]["code"], refused["error"]["vm_id"]) == ("vm_limit_reached", "vm-1")
    finally:
        forget_keys()
    assert assert_consistent(ledger, customer_id).balance_mt == 994 * TOKEN_MT
