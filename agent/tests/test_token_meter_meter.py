"""The meter against a fake Lambda client: batching, validation, retries with the same key,
final refusals, exhaustion, and the spool across a simulated crash."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from conftest import AGENT_DIR
from meter_fakes import FakeLambda, error_reply, ok_reply, wait_for

from token_meter import Meter, State
from token_meter.actions import IDEMPOTENCY_KEY_PATTERN, format_quantity, parse_quantity
from token_meter.spool import NewBatch, Spool

MakeMeter = Callable[..., Meter]


def client_error(code: str, status: int) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "Invoke")


def no_floats(value: object) -> bool:
    if isinstance(value, float):
        return False
    if isinstance(value, dict):
        return all(no_floats(item) for item in value.values())
    if isinstance(value, list):
        return all(no_floats(item) for item in value)
    return True


# ---- batching --------------------------------------------------------------------------


def test_lines_are_summed_per_action_and_vm_into_one_debit(
    make_meter: MakeMeter, customer_id: str
) -> None:
    fake = FakeLambda()
    meter = make_meter(fake)

    meter.record("api_call", 3)
    meter.record("api_call", "2.5")
    meter.record("api_call", Decimal("1"), vm_id="vm-1")
    meter.record("vm_runtime", Decimal("0.125"), vm_id="vm-1")
    meter.record("vm_runtime", "0.875", vm_id="vm-1")
    meter.record("file_upload", "0.000001")
    assert meter.flush(timeout_s=5)

    assert len(fake.calls) == 1
    payload = fake.payloads[0]
    assert payload["op"] == "debit"
    assert payload["customer_id"] == customer_id
    key = payload["idempotency_key"]
    assert key.startswith(f"{customer_id}-")
    assert IDEMPOTENCY_KEY_PATTERN.match(key)
    assert payload["occurred_at"].endswith("Z")
    assert payload["usage"] == [
        {"action": "api_call", "quantity": "5.5"},
        {"action": "api_call", "quantity": "1", "vm_id": "vm-1"},
        {"action": "vm_runtime", "quantity": "1", "vm_id": "vm-1"},
        {"action": "file_upload", "quantity": "0.000001"},
    ]
    assert no_floats(json.loads(fake.calls[0]))
    assert meter.status().counts[State.SENT] == 1


def test_max_lines_distinct_lines_trigger_a_send_without_flush(make_meter: MakeMeter) -> None:
    fake = FakeLambda()
    meter = make_meter(fake, max_lines=1000)

    for index in range(999):
        meter.record("screenshot", 1, vm_id=f"vm-{index}")
        meter.record("screenshot", 1, vm_id=f"vm-{index}")  # same line: summed, not counted
    time.sleep(0.1)
    assert fake.calls == []

    meter.record("screenshot", 1, vm_id="vm-999")
    wait_for(lambda: len(fake.calls) == 1)
    usage = fake.payloads[0]["usage"]
    assert len(usage) == 1000
    assert {line["quantity"] for line in usage[:999]} == {"2"}
    assert usage[999] == {"action": "screenshot", "quantity": "1", "vm_id": "vm-999"}


def test_batches_hold_at_most_max_lines(make_meter: MakeMeter) -> None:
    fake = FakeLambda()
    meter = make_meter(fake, max_lines=10)

    for index in range(25):
        meter.record("ai_message", 2, vm_id=f"vm-{index}")
    assert meter.flush(timeout_s=5)

    sizes = [len(payload["usage"]) for payload in fake.payloads]
    assert max(sizes) <= 10
    assert sum(sizes) == 25
    assert len({payload["idempotency_key"] for payload in fake.payloads}) == len(sizes)


def test_a_batch_is_cut_every_flush_interval(make_meter: MakeMeter) -> None:
    fake = FakeLambda()
    meter = make_meter(fake, flush_interval_s=0.05)

    meter.record("api_call", 1)

    wait_for(lambda: len(fake.calls) == 1, timeout_s=2)


def test_a_sum_past_the_services_line_bound_is_split(make_meter: MakeMeter) -> None:
    fake = FakeLambda()
    meter = make_meter(fake)

    meter.record("api_call", 10**9)
    meter.record("api_call", 10**9)
    meter.record("api_call", "0.5")
    assert meter.flush(timeout_s=5)

    quantities = [line["quantity"] for line in fake.payloads[0]["usage"]]
    assert quantities == ["1000000000", "1000000000", "0.5"]


def test_record_from_many_threads_loses_nothing(make_meter: MakeMeter) -> None:
    fake = FakeLambda()
    meter = make_meter(fake, max_lines=7, flush_interval_s=0.01)

    def worker(thread: int) -> None:
        for index in range(500):
            meter.record("api_call", "0.001", vm_id=f"vm-{(thread + index) % 20}")

    threads = [threading.Thread(target=worker, args=(thread,)) for thread in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert meter.flush(timeout_s=5)

    total = sum(Decimal(line["quantity"]) for p in fake.payloads for line in p["usage"])
    assert total == Decimal("4.000")


# ---- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "quantity", "vm_id"),
    [
        ("gpu_hour", 1, None),
        ("", 1, None),
        ("api_call", 0, None),
        ("api_call", -1, None),
        ("api_call", "-0.5", None),
        ("api_call", "abc", None),
        ("api_call", "", None),
        ("api_call", 1e-7, None),
        ("api_call", float("nan"), None),
        ("api_call", True, None),
        ("api_call", None, None),
        ("api_call", "NaN", None),
        ("api_call", "Infinity", None),
        ("api_call", "0.0000001", None),
        ("api_call", 10**9 + 1, None),
        ("api_call", 1, "bad id!"),
        ("api_call", 1, "-leading-dash"),
    ],
)
def test_bad_lines_raise_value_error_at_once(
    make_meter: MakeMeter, action: str, quantity: Any, vm_id: str | None
) -> None:
    meter = make_meter(FakeLambda())

    with pytest.raises(ValueError, match=r"."):
        meter.record(action, quantity, vm_id)

    assert meter.status().buffered_lines == 0


def test_quantities_stay_exact_decimals() -> None:
    assert parse_quantity("0.1") + parse_quantity("0.2") == Decimal("0.3")
    assert parse_quantity(0.1) + parse_quantity(0.2) == Decimal("0.3")  # floats as written
    assert format_quantity(Decimal("1E+2")) == "100"
    assert format_quantity(Decimal("2.500")) == "2.5"
    assert format_quantity(Decimal("0.000001")) == "0.000001"


def test_constructor_validates_its_settings(tmp_path: Path) -> None:
    for bad in ({"customer_id": "bad id"}, {"max_lines": 1001}, {"max_lines": 0}):
        options: dict[str, Any] = {"customer_id": "cust_1", **bad}
        with pytest.raises(ValueError, match=r"."):
            Meter(
                options.pop("customer_id"),
                spool_path=tmp_path / "s.sqlite3",
                lambda_client=FakeLambda(),
                **options,
            )


# ---- retries -----------------------------------------------------------------------------


def raw_response(status: int, body: bytes, function_error: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"StatusCode": status, "Payload": io.BytesIO(body)}
    if function_error:
        response["FunctionError"] = function_error
    return response


RETRYABLE = {
    "throttled": client_error("TooManyRequestsException", 429),
    "service_exception": client_error("ServiceException", 500),
    "http_503": client_error("503", 503),
    "read_timeout": ReadTimeoutError(endpoint_url="http://lambda"),
    "connect_timeout": ConnectTimeoutError(endpoint_url="http://lambda"),
    "endpoint_connection": EndpointConnectionError(endpoint_url="http://lambda"),
    "connection_closed": ConnectionClosedError(endpoint_url="http://lambda"),
    "no_credentials": NoCredentialsError(),
    "function_error": raw_response(200, b'{"errorMessage": "boom"}', "Unhandled"),
    "service_unavailable": error_reply("service_unavailable", retryable=True),
    "malformed_reply": raw_response(200, b"not json"),
}


@pytest.mark.parametrize("failure", list(RETRYABLE))
def test_retryable_failures_are_retried_with_the_same_key_and_payload(
    make_meter: MakeMeter, spool_path: Path, failure: str
) -> None:
    fake = FakeLambda().then(RETRYABLE[failure], RETRYABLE[failure])
    meter = make_meter(fake)

    meter.record("api_call", 3, vm_id="vm-1")
    assert meter.flush(timeout_s=5)

    assert len(fake.calls) == 3
    assert fake.calls[0] == fake.calls[1] == fake.calls[2]  # byte for byte
    batch = Spool(spool_path).batches()[0]
    assert batch.state is State.SENT
    assert batch.attempts == 3


def test_retries_back_off_with_full_jitter_up_to_the_cap(make_meter: MakeMeter) -> None:
    delays: list[float] = []

    class Recording:
        def uniform(self, low: float, high: float) -> float:
            delays.append(high)
            return 0.0

    fake = FakeLambda().then(*[client_error("TooManyRequestsException", 429)] * 6)
    meter = make_meter(fake, retry_base_s=0.2, retry_cap_s=1.0, rng=Recording())

    meter.record("api_call", 1)
    assert meter.flush(timeout_s=5)

    assert delays == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_record_never_waits_for_a_stuck_invoke(make_meter: MakeMeter, spool_path: Path) -> None:
    release = threading.Event()

    def stuck(payload: dict[str, Any]) -> object:
        release.wait(5)
        return ok_reply(payload)

    fake = FakeLambda(stuck)
    meter = make_meter(fake, max_lines=10)
    try:
        meter.record("api_call", 1, vm_id="vm-a")
        meter.flush(timeout_s=0)
        wait_for(lambda: len(fake.calls) == 1)

        started = time.perf_counter()
        for index in range(5_000):
            meter.record("api_call", 1, vm_id=f"vm-{index % 30}")
        assert time.perf_counter() - started < 1.0
        # The batcher keeps spooling while the sender waits: lines become durable anyway.
        wait_for(lambda: Spool(spool_path).status().counts[State.PENDING] >= 2)
    finally:
        release.set()
    assert meter.flush(timeout_s=5)


# ---- final answers -----------------------------------------------------------------------


def test_invalid_request_is_never_retried_and_stays_visible(
    make_meter: MakeMeter, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeLambda(lambda payload: error_reply("invalid_request"))
    meter = make_meter(fake)

    meter.record("api_call", 1)
    assert meter.flush(timeout_s=5)  # nothing left to send: invalid is final
    time.sleep(0.05)

    assert len(fake.calls) == 1
    status = meter.status()
    assert status.counts[State.INVALID] == 1
    assert status.invalid[0].payload["usage"] == [{"action": "api_call", "quantity": "1"}]
    assert status.invalid[0].last_error is not None
    assert "invalid_request" in status.invalid[0].last_error
    assert "kept as invalid" in caplog.text


def test_idempotency_key_reused_is_never_retried(make_meter: MakeMeter) -> None:
    fake = FakeLambda(lambda payload: error_reply("idempotency_key_reused"))
    meter = make_meter(fake)

    meter.record("api_call", 1)
    assert meter.flush(timeout_s=5)
    time.sleep(0.05)

    assert len(fake.calls) == 1
    assert meter.status().counts[State.FAILED] == 1


def test_insufficient_tokens_keeps_batches_and_fires_on_exhausted_once(
    make_meter: MakeMeter,
) -> None:
    exhausted: list[tuple[str | None, str | None]] = []
    refusing = True

    def service(payload: dict[str, Any]) -> object:
        return error_reply("insufficient_tokens") if refusing else ok_reply(payload)

    fake = FakeLambda(service)
    meter = make_meter(fake, on_exhausted=lambda vm, grace: exhausted.append((vm, grace)))

    for quantity in (1, 2, 3):
        meter.record("api_call", quantity)
        assert meter.flush(timeout_s=5)

    assert len(fake.calls) == 3
    assert exhausted == [(None, None)]
    status = meter.status()
    assert status.counts[State.REFUSED] == 3
    refused_calls = list(fake.calls)

    # A top-up later: the same batches go out again, same keys, same bytes.
    refusing = False
    assert meter.retry_refused() == 3
    assert meter.flush(timeout_s=5)
    assert sorted(fake.calls[3:]) == sorted(refused_calls)
    assert meter.status().counts[State.SENT] == 3

    # A successful debit re-armed the callback: the next exhaustion is news again.
    refusing = True
    meter.record("api_call", 4)
    assert meter.flush(timeout_s=5)
    assert exhausted == [(None, None), (None, None)]


def test_a_vm_at_its_daily_limit_is_refused_once_never_retried_and_named(
    make_meter: MakeMeter,
) -> None:
    exhausted: list[tuple[str | None, str | None]] = []
    refusal = error_reply("vm_limit_reached")
    refusal["error"] |= {"vm_id": "vm-7", "limit": "100", "resets_at": "2026-12-02T00:00:00Z"}
    fake = FakeLambda(lambda payload: refusal)
    meter = make_meter(fake, on_exhausted=lambda vm, grace: exhausted.append((vm, grace)))

    meter.record("vm_runtime", 5, vm_id="vm-7")
    assert meter.flush(timeout_s=5)
    meter.record("vm_runtime", 5, vm_id="vm-7")
    assert meter.flush(timeout_s=5)

    assert len(fake.calls) == 2  # each batch sent once: a final refusal, not a retry loop
    assert exhausted == [("vm-7", None)]  # once per episode, naming the VM
    status = meter.status()
    assert status.counts[State.REFUSED] == 2
    assert "vm_limit_reached" in (status.refused[0].last_error or "")


def test_on_exhausted_errors_do_not_stop_the_meter(make_meter: MakeMeter) -> None:
    def broken(vm_id: str | None, grace_until: str | None) -> None:
        raise RuntimeError("callback bug")

    fake = FakeLambda().then(error_reply("insufficient_tokens"))
    meter = make_meter(fake, on_exhausted=broken)

    meter.record("api_call", 1)
    assert meter.flush(timeout_s=5)
    meter.record("api_call", 2)
    assert meter.flush(timeout_s=5)

    assert meter.status().counts[State.SENT] == 1


# ---- crashes -----------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["debit", "renew"])
def test_a_send_interrupted_by_a_crash_is_resent_with_the_same_key(
    make_meter: MakeMeter, spool_path: Path, customer_id: str, op: str
) -> None:
    # The crashed process: spooled a batch, claimed it (state sending), then died without
    # an answer. Its connection is simply gone.
    payload: dict[str, Any] = {"op": op, "customer_id": customer_id, "usage": []}
    if op == "debit":
        usage = [{"action": "api_call", "quantity": "2"}]
        payload.update(idempotency_key=f"{customer_id}-k1", usage=usage)
    else:
        payload.update(hold_id="h0", next_hold_id="h1", amount="15", expires_in_s=1020)
    crashed = Spool(spool_path)
    crashed.add(NewBatch(f"{customer_id}-k1", op, customer_id, payload, 1))
    assert crashed.claim(f"{customer_id}-k1")
    sent_bytes = crashed.batches()[0].payload_text.encode()
    crashed.close()

    fake = FakeLambda()
    meter = make_meter(fake)
    assert meter.flush(timeout_s=5)

    assert fake.calls == [sent_bytes]
    batch = meter.spool.batches()[0]
    assert (batch.state, batch.attempts) == (State.SENT, 2)


def test_a_second_meter_resends_what_a_dead_one_was_sending(
    make_meter: MakeMeter, spool_path: Path
) -> None:
    hung = threading.Event()

    def hang(payload: dict[str, Any]) -> object:
        hung.wait(5)
        return ReadTimeoutError(endpoint_url="http://lambda")

    first_client = FakeLambda(hang)
    first = make_meter(first_client)
    first.record("screenshot", 4, vm_id="vm-9")
    first.flush(timeout_s=0)
    wait_for(lambda: len(first_client.calls) == 1)
    assert Spool(spool_path).batches()[0].state is State.SENDING

    second_client = FakeLambda()
    second = make_meter(second_client)  # the restart after the crash
    assert second.flush(timeout_s=5)
    hung.set()

    assert second_client.calls == first_client.calls
    assert [batch.state for batch in Spool(spool_path).batches()] == [State.SENT]


def test_unsent_batches_survive_close_and_go_out_on_the_next_start(
    make_meter: MakeMeter, spool_path: Path
) -> None:
    down = FakeLambda(lambda payload: EndpointConnectionError(endpoint_url="http://lambda"))
    first = make_meter(down)
    first.record("ai_message", 5)
    assert not first.close(timeout_s=0.2)

    up = FakeLambda()
    second = make_meter(up)
    assert second.flush(timeout_s=5)

    assert up.calls[0] == down.calls[0]


def test_close_flushes_joins_its_threads_and_refuses_new_lines(make_meter: MakeMeter) -> None:
    fake = FakeLambda()
    meter = make_meter(fake)
    meter.record("api_call", 1)

    assert meter.close()

    assert len(fake.calls) == 1
    assert not any(t.name.startswith("token-meter") for t in threading.enumerate())
    with pytest.raises(RuntimeError, match="closed"):
        meter.record("api_call", 1)


def test_the_atexit_hook_spools_and_sends_at_interpreter_exit(
    spool_path: Path, customer_id: str
) -> None:
    script = f"""
import io, json, sys
sys.path.insert(0, {str(AGENT_DIR)!r})
from token_meter import Meter

class Ok:
    def invoke(self, *, FunctionName, Payload):
        reply = {{"ok": True, "transaction_id": "t", "debited_mt": 300, "replayed": False}}
        return {{"StatusCode": 200, "Payload": io.BytesIO(json.dumps(reply).encode())}}

meter = Meter({customer_id!r}, spool_path={str(spool_path)!r}, lambda_client=Ok(),
              flush_interval_s=3600)
meter.record("api_call", 3)
# no close(): the atexit hook must spool and send the line
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)

    batches = Spool(spool_path).batches()
    assert [(batch.state, batch.payload["usage"]) for batch in batches] == [
        (State.SENT, [{"action": "api_call", "quantity": "3"}])
    ]


def test_lines_the_cli_spooled_join_the_meters_next_batch(
    make_meter: MakeMeter, spool_path: Path, customer_id: str
) -> None:
    Spool(spool_path).add_line(customer_id, "api_call", Decimal(2), None)
    Spool(spool_path).add_line("cust_other", "api_call", Decimal(7), None)
    fake = FakeLambda()
    meter = make_meter(fake)

    meter.record("api_call", 1)
    assert meter.flush(timeout_s=5)

    assert fake.payloads[0]["usage"] == [{"action": "api_call", "quantity": "3"}]
    assert meter.status().pending_lines == 1  # another customer's line is not ours to send
