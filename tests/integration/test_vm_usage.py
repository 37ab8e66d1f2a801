"""Usage by VM and the limits' HTTP routes and events (issue 25), on DynamoDB Local's real
stream and the dev server's HTTP API:

- usage by VM equals the ledger's usage lines summed by VM and day, for a generated month
  of debits across 50 VMs, however often the stream delivers each entry;
- `VmLimitReached` is put once per VM and day, with a stable id;
- limits sent with an admin token may lower, never raise (403, nothing changed); bad
  input is a 400 that changes nothing.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from debit_handler import lambda_handler as debit_handler

from local import dynamodb_local, identity
from local.devserver import DevServer
from tests.conftest import fake_context
from tests.integration import test_ledger_stream as ledger_stream_tests
from tests.integration.helpers import fund, http_json
from tests.integration.test_ledger_stream import deliver, stream_records
from tests.integration.test_vm_limits import Clock, usage_by_vm_and_day
from token_billing import runtime
from token_billing.core.clock import iso_utc
from token_billing.store.ledger import Ledger
from token_billing.store.vm_limits import VmLimitSettings, VmLimitStore
from token_billing.store.vm_usage import VMS_PER_TRANSACTION, VmUsageAggregates

pytestmark = pytest.mark.integration

TABLE = "LedgerTable"
BUS = ledger_stream_tests.BUS
LIMITS = "/api/v1/customers/{}/tokens/vm-limits"
USAGE = "/api/v1/customers/{}/tokens/usage?group_by=vm&days={}&top={}"
TOKEN_MT = 1_000


# The dev server with its events kept in memory, and the handlers' events client pointed
# at it: the ledger stream's tests' own fixtures.
server = ledger_stream_tests.server
eventbridge = ledger_stream_tests.eventbridge


def debit(customer: str, key: str, usage: list[dict[str, Any]]) -> dict[str, Any]:
    reply: dict[str, Any] = debit_handler(
        {"customer_id": customer, "idempotency_key": key, "usage": usage}, fake_context()
    )
    return reply


def as_report(usage: dict[str | None, dict[date, int]]) -> dict[tuple[str | None, str], int]:
    return {(vm, day.isoformat()): mt for vm, days in usage.items() for day, mt in days.items()}


# ---- usage by VM -------------------------------------------------------------------------


def test_usage_by_vm_equals_the_ledger_lines_for_a_month_across_50_vms(
    server: DevServer,
    ddb_local: dynamodb_local.DynamoDBLocal,
    ledger: Ledger,
    customer_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fund(ledger, customer_id, 10**9 * TOKEN_MT)
    today = datetime.now(UTC).date()
    clock = Clock(datetime.combine(today - timedelta(days=29), datetime.min.time(), UTC))
    monkeypatch.setattr(runtime.default_ledger(), "_clock", clock)
    rng = random.Random(2025)
    vms = [f"vm-{n:02d}" for n in range(50)]
    for day in range(30):
        for n in range(8):
            clock.now = datetime.combine(
                today - timedelta(days=29 - day), datetime.min.time(), UTC
            ) + timedelta(hours=3 * n, minutes=rng.randint(0, 170))
            tenths = [rng.randint(1, 400) for _ in range(rng.randint(1, 4))]
            lines: list[dict[str, Any]] = [
                {
                    "action": rng.choice(["vm_runtime", "api_call", "screenshot"]),
                    "quantity": f"{quantity // 10}.{quantity % 10}",
                    "vm_id": rng.choice(vms),
                }
                for quantity in tenths
            ]
            if n == 0:
                lines.append({"action": "ai_message", "quantity": 3})  # names no VM
            assert debit(customer_id, f"d{day}-{n}", lines)["ok"]
    records = stream_records(ddb_local, customer_id, account_only=False)
    entries = [r for r in records if r["dynamodb"]["Keys"]["SK"]["S"].startswith("TXN#")]
    assert len(entries) == 240

    deliver(records, batch_size=25)
    deliver(entries)  # every entry again: a retried batch
    expected = usage_by_vm_and_day(ledger, customer_id)
    aggregates = VmUsageAggregates(ddb_local.client(), TABLE)
    first_day = today - timedelta(days=29)
    assert as_report(aggregates.usage(customer_id, first_day, today)) == expected

    # The route: the top 50 of the 51 (50 VMs and the lines naming none, vm_id null), every
    # day; the one left out is each day's "other".
    token = identity.mint(customer_id=customer_id)
    status, body = http_json(server.url, "GET", USAGE.format(customer_id, 30, 50), token=token)
    assert status == 200, body
    assert (body["period_start"], body["period_end"]) == (first_day.isoformat(), today.isoformat())
    assert len(body["days"]) == 30
    assert body["vm_count"] == len({vm for vm, _ in expected}) == 51
    assert body["total_mt"] == sum(expected.values())
    top = {vm["vm_id"] for vm in body["top_vms"]}
    assert len(top) == 50
    from_route = {
        (vm["vm_id"], day["day"]): vm["used_mt"] for day in body["days"] for vm in day["top_vms"]
    }
    assert from_route == {key: mt for key, mt in expected.items() if key[0] in top}
    for day in body["days"]:
        rest = sum(mt for (vm, on), mt in expected.items() if on == day["day"] and vm not in top)
        assert day["other_mt"] == rest
    used = [vm["used_mt"] for vm in body["top_vms"]]
    assert used == sorted(used, reverse=True)

    # The top 5 only: every other VM summed per day, nothing lost.
    status, top5 = http_json(server.url, "GET", USAGE.format(customer_id, 30, 5), token=token)
    assert status == 200
    assert len(top5["top_vms"]) == 5
    assert all(
        day["total_mt"] == sum(vm["used_mt"] for vm in day["top_vms"]) + day["other_mt"]
        for day in top5["days"]
    )


def test_an_entry_of_more_vms_than_a_transaction_holds_is_counted_once_in_parts(
    ddb_local: dynamodb_local.DynamoDBLocal, ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 10**6 * TOKEN_MT)
    vms = VMS_PER_TRANSACTION + 51
    lines = [{"action": "api_call", "quantity": 10, "vm_id": f"vm-{n}"} for n in range(vms)]
    assert debit(customer_id, "wide", lines)["ok"]
    records = stream_records(ddb_local, customer_id, account_only=False)
    deliver(records)
    deliver(records)
    today = datetime.now(UTC).date()
    usage = VmUsageAggregates(ddb_local.client(), TABLE).usage(customer_id, today, today)
    assert usage == {f"vm-{n}": {today: 1_000} for n in range(vms)}


# ---- VmLimitReached ----------------------------------------------------------------------


def limit_events(server: DevServer, customer_id: str) -> list[dict[str, Any]]:
    found = []
    for entry in server.fake_events.snapshot():
        detail = json.loads(entry["Detail"])
        if entry["DetailType"] == "VmLimitReached" and detail["customer_id"] == customer_id:
            assert (entry["Source"], entry["EventBusName"]) == ("token-billing", BUS)
            found.append(detail)
    return found


def test_vm_limit_reached_is_put_once_per_vm_and_day_with_a_stable_id(
    server: DevServer,
    ddb_local: dynamodb_local.DynamoDBLocal,
    ledger: Ledger,
    customer_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fund(ledger, customer_id, 1_000 * TOKEN_MT)
    VmLimitStore(ledger._client, TABLE).put(
        customer_id, VmLimitSettings(10 * TOKEN_MT, {}), expected_version=0
    )
    clock = Clock(datetime(2026, 12, 1, 22, 0, tzinfo=UTC))
    monkeypatch.setattr(runtime.default_ledger(), "_clock", clock)
    usage = [{"action": "vm_runtime", "quantity": 8, "vm_id": "vm-1"}]
    assert debit(customer_id, "a", usage)["ok"]
    for key in ("b", "c", "d"):  # refused three times: the day is marked once
        assert debit(customer_id, key, usage)["error"]["code"] == "vm_limit_reached"
    runtime.default_vm_limits()._reached.clear()  # another container refuses it too
    assert debit(customer_id, "e", usage)["error"]["code"] == "vm_limit_reached"
    clock.now = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # the next UTC day
    assert debit(customer_id, "f", usage)["ok"]
    assert debit(customer_id, "g", usage)["error"]["code"] == "vm_limit_reached"

    records = stream_records(ddb_local, customer_id, account_only=False)
    marks = [r for r in records if r["dynamodb"]["Keys"]["SK"]["S"].startswith("VMDAY#")]
    assert len(marks) == 2  # the counters' spending never passes the filter
    deliver(records)
    deliver(marks)  # redelivered
    events = limit_events(server, customer_id)
    assert [event["id"] for event in events] == [
        f"vm-limit:{customer_id}:vm-1:2026-12-01",
        f"vm-limit:{customer_id}:vm-1:2026-12-02",
    ]
    first = events[0]
    assert (first["limit"], first["spent_today"], first["resets_at"]) == (
        "10",
        "8",
        "2026-12-02T00:00:00Z",
    )
    assert first["reached_at"] <= iso_utc(datetime.now(UTC))


# ---- the limits' routes ------------------------------------------------------------------


def limits_call(
    server: DevServer, method: str, customer_id: str, body: Any = None, *, admin: bool = False
) -> tuple[int, dict[str, Any]]:
    token = identity.mint(admin=True) if admin else identity.mint(customer_id=customer_id)
    return http_json(server.url, method, LIMITS.format(customer_id), body, token=token)


def test_the_customer_sets_limits_and_reads_them_back(server: DevServer, customer_id: str) -> None:
    status, empty = limits_call(server, "GET", customer_id)
    assert status == 200
    assert (empty["default_daily_limit"], empty["limits"], empty["version"]) == (None, {}, 0)
    assert empty["takes_effect_within_s"] == 60
    body = {"default_daily_limit": "500", "limits": {"vm-7": "100.5", "vm-build": None}}
    status, written = limits_call(server, "PUT", customer_id, body)
    assert status == 200, written
    assert written["default_daily_limit_mt"] == 500_000
    assert written["limits"] == {"vm-7": "100.5", "vm-build": None}
    assert written["limits_mt"] == {"vm-7": 100_500, "vm-build": None}
    assert written["version"] == 1
    assert written["updated_by"].startswith("user-")
    assert limits_call(server, "GET", customer_id)[1] == written
    # The customer may raise and remove as they like.
    status, raised = limits_call(server, "PUT", customer_id, {"limits": {"vm-7": "900"}})
    assert (status, raised["default_daily_limit"], raised["version"]) == (200, None, 2)


@pytest.mark.parametrize(
    ("change", "allowed"),
    [
        ({"default_daily_limit": "400", "limits": {"vm-7": "50"}}, True),  # both lower
        ({"default_daily_limit": "500", "limits": {"vm-7": "100", "vm-9": "1"}}, True),
        ({"default_daily_limit": "500", "limits": {"vm-7": "101"}}, False),  # raises vm-7
        ({"default_daily_limit": "501", "limits": {"vm-7": "100"}}, False),  # raises the rest
        ({"default_daily_limit": "500", "limits": {}}, False),  # vm-7 back to 500
        ({"default_daily_limit": None, "limits": {"vm-7": "100"}}, False),  # removes default
        ({"default_daily_limit": "500", "limits": {"vm-7": None}}, False),  # exempts vm-7
    ],
)
def test_an_admin_may_lower_limits_but_not_raise_them(
    server: DevServer, customer_id: str, change: dict[str, Any], allowed: bool
) -> None:
    start = {"default_daily_limit": "500", "limits": {"vm-7": "100"}}
    assert limits_call(server, "PUT", customer_id, start)[0] == 200
    status, body = limits_call(server, "PUT", customer_id, change, admin=True)
    _, now = limits_call(server, "GET", customer_id)
    if allowed:
        assert status == 200, body
        assert now["version"] == 2
        assert now["updated_by"].startswith("user-admin")
    else:
        assert status == 403, body
        assert body["error"]["code"] == "forbidden"
        assert "nothing was changed" in body["error"]["message"]
        assert (now["version"], now["default_daily_limit"], now["limits"]) == (
            1,
            "500",
            {"vm-7": "100"},
        )


@pytest.mark.parametrize(
    "body",
    [
        {"default_daily_limit": "-1"},
        {"default_daily_limit": 100},  # a JSON number: amounts are exact decimal strings
        {"default_daily_limit": "1.0001"},
        {"limits": {"bad vm id": "1"}},
        {"limits": {"vm-1": "x"}},
        {"limits": {f"vm-{n}": "1" for n in range(1_001)}},
        {"per_vm": {}},
    ],
)
def test_bad_limits_are_a_400_that_changes_nothing(
    server: DevServer, customer_id: str, body: dict[str, Any]
) -> None:
    assert limits_call(server, "PUT", customer_id, {"default_daily_limit": "5"})[0] == 200
    status, reply = limits_call(server, "PUT", customer_id, body)
    assert status == 400, reply
    assert reply["error"]["code"] == "invalid_request"
    assert limits_call(server, "GET", customer_id)[1]["version"] == 1


def test_another_customer_may_neither_read_nor_set_them(
    server: DevServer, customer_id: str
) -> None:
    token = identity.mint(customer_id="cust_someone_else")
    for method, body in (("GET", None), ("PUT", {"default_daily_limit": "1"})):
        status, reply = http_json(server.url, method, LIMITS.format(customer_id), body, token=token)
        assert (status, reply["error"]["code"]) == (403, "forbidden")
    status, _ = http_json(server.url, "GET", USAGE.format(customer_id, 30, 10), token=token)
    assert status == 403
