"""VM sessions against a fake invoker: hold -> renew -> settle, a chain that follows the
hold in force, exhaustion from a refused hold or a renew that says `renewed: false`."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from meter_fakes import FakeLambda, StepClock, error_reply, ok_reply, wait_for

from token_meter import Meter, State
from token_meter.actions import IDEMPOTENCY_KEY_PATTERN
from token_meter.session import minutes_between

MakeMeter = Callable[..., Meter]
Exhausted = list[tuple[str | None, str | None]]


def ops(fake: FakeLambda) -> list[str]:
    return [payload["op"] for payload in fake.payloads]


def minutes_billed(fake: FakeLambda) -> Decimal:
    return sum(
        (
            Decimal(line["quantity"])
            for payload in fake.payloads
            for line in payload.get("usage", [])
            if line["action"] == "vm_runtime"
        ),
        Decimal(0),
    )


def test_hold_renew_settle_follow_the_hold_in_force(
    make_meter: MakeMeter, customer_id: str
) -> None:
    fake = FakeLambda()
    meter = make_meter(fake, clock=StepClock(60.0))  # every measurement: one more minute

    with meter.vm_session("vm-7", hold_minutes=15, period_s=0.02) as session:
        wait_for(lambda: ops(fake).count("renew") >= 2)
    assert meter.flush(timeout_s=5)

    calls = fake.payloads
    assert [call["op"] for call in calls[:3]] == ["hold", "renew", "renew"]
    assert calls[-1]["op"] == "settle"
    hold = calls[0]
    assert hold == {
        "op": "hold",
        "customer_id": customer_id,
        "hold_id": hold["hold_id"],
        "amount": "15",
        "expires_in_s": 15 * 60 + 120,
        "vm_id": "vm-7",
    }
    assert IDEMPOTENCY_KEY_PATTERN.match(hold["hold_id"])
    in_force = hold["hold_id"]
    for renew in calls[1:-1]:
        assert renew["op"] == "renew"
        assert renew["hold_id"] == in_force
        assert renew["next_hold_id"] != in_force
        assert renew["usage"] == [{"action": "vm_runtime", "quantity": "1", "vm_id": "vm-7"}]
        assert (renew["amount"], renew["expires_in_s"], renew["vm_id"]) == ("15", 1020, "vm-7")
        in_force = renew["next_hold_id"]
    settle = calls[-1]
    assert settle["hold_id"] == in_force == session.hold_id
    assert settle["usage"] == [{"action": "vm_runtime", "quantity": "1", "vm_id": "vm-7"}]
    assert meter.status().counts[State.SENT] == len(calls)


def test_renewed_false_calls_on_exhausted_with_grace_until_once_per_episode(
    make_meter: MakeMeter,
) -> None:
    exhausted: Exhausted = []
    renewals: list[bool] = [False, True, False]

    def service(payload: dict[str, Any]) -> object:
        reply = ok_reply(payload)
        if payload["op"] == "renew" and renewals:
            reply["renewed"] = renewals.pop(0)
            if not reply["renewed"]:
                del reply["expires_at"]
                reply["grace_until"] = "2026-11-25T12:17:00Z"
        return reply

    fake = FakeLambda(service)
    clock = StepClock(60.0)
    meter = make_meter(
        fake, clock=clock, on_exhausted=lambda vm, grace: exhausted.append((vm, grace))
    )
    started = clock.now + clock.step_s  # the session reads the clock once at start

    with meter.vm_session("vm-1", hold_minutes=5, period_s=0.02) as session:
        wait_for(lambda: ops(fake).count("settle") >= 2)
        wait_for(lambda: not session.exhausted)
    assert meter.flush(timeout_s=5)

    calls = fake.payloads
    h0 = calls[0]["hold_id"]
    # hold h0; renew h0 -> refused (grace); the next period settles h0 and places a new
    # hold h2 (accepted: the episode ends); renew h2 -> h3; renew h3 -> refused; settle h3.
    assert [call["op"] for call in calls[:8]] == [
        "hold",
        "renew",
        "settle",
        "hold",
        "renew",
        "renew",
        "settle",
        "hold",
    ]
    h2 = calls[3]["hold_id"]
    h3 = calls[4]["next_hold_id"]
    assert [calls[i]["hold_id"] for i in (1, 2, 4, 5, 6)] == [h0, h0, h2, h3, h3]
    assert exhausted == [("vm-1", "2026-11-25T12:17:00Z"), ("vm-1", "2026-11-25T12:17:00Z")]
    # Every measured minute was billed once, by a renew or a settle.
    assert minutes_billed(fake) == minutes_between(started, clock.now)


def test_a_refused_hold_calls_on_exhausted_and_bills_minutes_as_debits(
    make_meter: MakeMeter,
) -> None:
    exhausted: Exhausted = []

    def service(payload: dict[str, Any]) -> object:
        if payload["op"] == "hold":
            return error_reply("insufficient_tokens")
        return ok_reply(payload)

    fake = FakeLambda(service)
    meter = make_meter(
        fake, clock=StepClock(60.0), on_exhausted=lambda vm, grace: exhausted.append((vm, grace))
    )

    with meter.vm_session("vm-2", hold_minutes=15, period_s=0.02) as session:
        wait_for(lambda: ops(fake).count("hold") >= 3)
    assert meter.flush(timeout_s=5)

    assert exhausted == [("vm-2", None)]
    assert session.hold_id is None
    assert set(ops(fake)) == {"hold", "debit"}
    # Each period's minutes went out as a plain vm_runtime debit: none were lost.
    assert minutes_billed(fake) >= 2
    assert all(p["usage"][0]["vm_id"] == "vm-2" for p in fake.payloads if p["op"] == "debit")
    status = meter.status()
    assert status.counts[State.REFUSED] == 0  # a declined hold leaves nothing to bill


def test_every_measured_minute_is_billed_exactly_once(make_meter: MakeMeter) -> None:
    clock = StepClock(37.5)  # 0.625 minutes per measurement
    fake = FakeLambda()
    meter = make_meter(fake, clock=clock)
    started = clock.now + clock.step_s  # the session reads the clock once at start

    with meter.vm_session("vm-3", hold_minutes=15, period_s=0.02):
        wait_for(lambda: ops(fake).count("renew") >= 3)
    ended = clock.now
    assert meter.flush(timeout_s=5)

    assert minutes_billed(fake) == minutes_between(started, ended)


def test_no_minute_used_releases_the_hold(make_meter: MakeMeter) -> None:
    fake = FakeLambda()
    meter = make_meter(fake, clock=lambda: 5.0)

    with meter.vm_session("vm-4", hold_minutes=1, period_s=0.01):
        wait_for(lambda: len(fake.calls) == 1)
        time.sleep(0.1)  # periods pass, but a renew without usage is never sent
    assert meter.flush(timeout_s=5)

    assert ops(fake) == ["hold", "release"]
    assert fake.payloads[1]["hold_id"] == fake.payloads[0]["hold_id"]


def test_settle_on_a_missing_hold_is_billed_as_a_debit(make_meter: MakeMeter) -> None:
    def service(payload: dict[str, Any]) -> object:
        if payload["op"] == "settle":
            return error_reply("hold_not_found")
        return ok_reply(payload)

    fake = FakeLambda(service)
    meter = make_meter(fake, clock=StepClock(90.0))

    with meter.vm_session("vm-5"):
        wait_for(lambda: len(fake.calls) == 1)
    assert meter.flush(timeout_s=5)

    settle, debit = fake.payloads[1], fake.payloads[2]
    assert (settle["op"], debit["op"]) == ("settle", "debit")
    assert debit["usage"] == settle["usage"]
    assert debit["idempotency_key"] == f"{settle['hold_id']}.settle.debit"
    assert IDEMPOTENCY_KEY_PATTERN.match(debit["idempotency_key"])


def test_a_hold_is_retried_like_a_debit(make_meter: MakeMeter) -> None:
    fake = FakeLambda().then(error_reply("service_unavailable", retryable=True))
    meter = make_meter(fake, clock=lambda: 5.0)

    with meter.vm_session("vm-6") as session:
        wait_for(lambda: len(fake.calls) == 2)
    assert meter.flush(timeout_s=5)

    assert fake.calls[0] == fake.calls[1]
    assert not session.exhausted


def test_close_settles_open_sessions(make_meter: MakeMeter) -> None:
    fake = FakeLambda()
    meter = make_meter(fake, clock=StepClock(60.0))
    context = meter.vm_session("vm-8")
    context.__enter__()

    assert meter.close()
    context.__exit__(None, None, None)  # already settled: a no-op

    assert ops(fake) == ["hold", "settle"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"vm_id": "bad id"}, "vm_id"),
        ({"hold_minutes": 0}, "hold_minutes"),
        ({"hold_minutes": 1439}, "hold_minutes"),
        ({"hold_minutes": 1.5}, "hold_minutes"),
        ({"period_s": 0}, "period_s"),
        ({"hold_minutes": 1, "period_s": 61}, "period_s"),
    ],
)
def test_session_arguments_are_validated(
    make_meter: MakeMeter, options: dict[str, Any], message: str
) -> None:
    meter = make_meter(FakeLambda())
    arguments = {"vm_id": "vm-1", **options}

    with pytest.raises(ValueError, match=message), meter.vm_session(**arguments):
        pass


def test_minutes_are_rounded_half_up_to_three_decimals() -> None:
    assert minutes_between(0.0, 90.0) == Decimal("1.500")
    assert minutes_between(0.0, 0.03) == Decimal("0.001")  # 0.0005 rounds up
    assert minutes_between(0.0, 0.029) == Decimal("0.000")
    assert minutes_between(10.0, 5.0) == Decimal("0.000")  # never negative
