"""The meter against the real dev server (Lambda Invoke API, unchanged debit handler) on
DynamoDB Local: exact totals, a SIGKILL in the middle of flushing, and a server that
answers 503s, throttles, fails and times out for a while.

The test funds customers and checks balances with the service's own ledger; the package
under test talks to the service only through the Invoke API.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from conftest import AGENT_DIR

from local import dynamodb_local
from local.apigw import HttpResponse
from local.devserver import DevServer
from local.lambda_runtime import function_error, lambda_error
from tests.integration import conftest as service_fixtures
from token_billing.store.ledger import Ledger
from token_meter import Meter, State
from token_meter.spool import Spool

pytestmark = pytest.mark.integration

# Milli-tokens per unit, as GET /api/v1/token-rates lists them (tokens x 1000).
RATE_MT = {
    "vm_runtime": 1000,
    "screenshot": 500,
    "api_call": 100,
    "ai_message": 200,
    "file_upload": 1000,
}
# Quantities whose cost is a whole number of milli-tokens, so the expected total does not
# depend on how lines were summed into batches (cost is rounded up per line per batch).
QUANTITIES = {
    "vm_runtime": ["0.5", "1.25", "2"],
    "screenshot": ["1", "3"],
    "api_call": ["1", "7", "20"],
    "ai_message": ["1", "5"],
    "file_upload": ["0.75", "2.5", "10"],
}
FUNDING_MT = 10**12

# The service's own fixtures: DynamoDB Local for the session, boto3 (and so the unchanged
# handlers the dev server runs) pointed at it around every test of this module.
ddb_local = service_fixtures.ddb_local
local_aws = service_fixtures.local_aws
dev_server = service_fixtures.dev_server

Line = tuple[str, str, str]  # action, quantity, vm_id


@pytest.fixture(scope="module")
def server(dev_server: DevServer) -> DevServer:
    return dev_server


@pytest.fixture
def ledger(ddb_local: dynamodb_local.DynamoDBLocal) -> Ledger:
    return Ledger(ddb_local.client(), "LedgerTable")


def fund(ledger: Ledger, customer_id: str, amount_mt: int = FUNDING_MT) -> None:
    ledger.grant(
        customer_id=customer_id,
        idempotency_key=f"fund-{uuid.uuid4()}",
        amount_mt=amount_mt,
        reason="token meter test funding",
        granted_by="tests",
    )


def balance_mt(ledger: Ledger, customer_id: str) -> int:
    """The balance, after checking it equals the sum of the ledger's entries."""
    account = ledger.get_account(customer_id)
    assert account is not None
    assert account.balance_mt == ledger.sum_entries_mt(customer_id)
    return account.balance_mt


def spent_mt(ledger: Ledger, customer_id: str) -> int:
    return FUNDING_MT - balance_mt(ledger, customer_id)


def cost_mt(lines: list[Line]) -> int:
    total = sum((RATE_MT[action] * Decimal(quantity) for action, quantity, _ in lines), Decimal())
    assert total == total.to_integral_value()
    return int(total)


def make_lines(count: int, vms: int, seed: int) -> list[Line]:
    chooser = random.Random(seed)
    lines = []
    for index in range(count):
        action = chooser.choice(list(QUANTITIES))
        lines.append((action, chooser.choice(QUANTITIES[action]), f"vm-{index % vms:03d}"))
    return lines


def local_client_config(read_timeout_s: float = 10) -> Config:
    # One attempt per call: the meter's own retries are under test, not botocore's. (In
    # botocore's Config, `max_attempts` counts retries; `total_max_attempts` counts calls.)
    return Config(
        connect_timeout=2,
        read_timeout=read_timeout_s,
        retries={"mode": "standard", "total_max_attempts": 1},
    )


def usage_entry_keys(ledger: Ledger, customer_id: str) -> list[str]:
    return [
        item["idempotency_key"]["S"]
        for item in ledger.iter_entries(customer_id)
        if item["kind"]["S"] == "usage"
    ]


@pytest.fixture(autouse=True)
def trusted_host(local_aws: None) -> None:
    """These tests meter many VMs through one meter, as an agent on a trusted host does
    (RequireAgentCredentials=false); the credential test below turns them on."""
    os.environ["REQUIRE_AGENT_CREDENTIALS"] = "false"


def test_a_vm_meter_with_its_credential_debits_and_another_vm_is_refused(
    server: DevServer, ledger: Ledger, customer_id: str, spool_path: Path
) -> None:
    """RequireAgentCredentials=true, as the template defaults: the credential comes from
    the control plane (here the dev server's `/_local/agent-credential`), the meter
    sends it with every batch, and a line of another VM is refused, nothing moved."""
    from tools.agent_credential import local_keys_document

    from token_billing.integrations.agent_credential_keys import forget_keys

    os.environ.update(
        REQUIRE_AGENT_CREDENTIALS="true",
        STAGE="local",
        AGENT_CREDENTIAL_KEYS=local_keys_document(),
    )
    forget_keys()
    fund(ledger, customer_id, 100_000)

    def credential() -> str:
        request = urllib.request.Request(  # noqa: S310 - the local dev server
            server.url + "/_local/agent-credential",
            data=json.dumps({"customer_id": customer_id, "vm_id": "vm-1"}).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return str(json.load(response)["credential"])

    with Meter(
        customer_id,
        spool_path=spool_path,
        endpoint_url=server.url,
        boto_config=local_client_config(),
        credential=credential,
    ) as meter:
        meter.record("api_call", 10, vm_id="vm-1")
        assert meter.flush(timeout_s=10)
        assert balance_mt(ledger, customer_id) == 99_000
        meter.record("api_call", 10, vm_id="vm-2")  # not this credential's VM
        assert meter.flush(timeout_s=10)
        failed = meter.status().failed
    assert [(batch.last_error or "").split(":")[0] for batch in failed] == ["credential_mismatch"]
    assert balance_mt(ledger, customer_id) == 99_000
    forget_keys()


# ---- exact totals ------------------------------------------------------------------------


def test_two_thousand_lines_over_fifty_vms_cost_exactly_what_was_recorded(
    server: DevServer, ledger: Ledger, customer_id: str, spool_path: Path
) -> None:
    fund(ledger, customer_id)
    lines = make_lines(2_000, vms=50, seed=1)
    meter = Meter(
        customer_id,
        spool_path=spool_path,
        endpoint_url=server.url,
        boto_config=local_client_config(),
        max_lines=100,  # 250 distinct (action, vm) lines: several batches, some by size
        flush_interval_s=0.2,
    )

    def agent(part: list[Line]) -> None:
        for action, quantity, vm_id in part:
            meter.record(action, quantity, vm_id)

    threads = [threading.Thread(target=agent, args=(lines[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert meter.close(timeout_s=30)

    assert spent_mt(ledger, customer_id) == cost_mt(lines)
    batches = Spool(spool_path).batches()
    assert {batch.state for batch in batches} == {State.SENT}
    assert sorted(usage_entry_keys(ledger, customer_id)) == sorted(b.key for b in batches)
    assert sum(b.line_count for b in batches) >= 250


def test_refused_batches_wait_for_a_top_up_then_bill_exactly_once(
    server: DevServer, ledger: Ledger, customer_id: str, spool_path: Path
) -> None:
    exhausted: list[tuple[str | None, str | None]] = []
    with Meter(
        customer_id,
        spool_path=spool_path,
        endpoint_url=server.url,
        boto_config=local_client_config(),
        on_exhausted=lambda vm_id, grace_until: exhausted.append((vm_id, grace_until)),
    ) as meter:
        meter.record("api_call", 10)  # 1,000 mt, before the customer has an account
        assert meter.flush(timeout_s=10)
        fund(ledger, customer_id, 1_500)
        meter.record("screenshot", 4)  # 2,000 mt > 1,500 available
        assert meter.flush(timeout_s=10)

        status = meter.status()
        assert status.counts[State.REFUSED] == 2
        errors = sorted((batch.last_error or "").split(":")[0] for batch in status.refused)
        assert errors == ["customer_not_found", "insufficient_tokens"]
        assert exhausted == [(None, None)]
        assert balance_mt(ledger, customer_id) == 1_500

        fund(ledger, customer_id, 10_000)
        assert meter.retry_refused() == 2
        assert meter.flush(timeout_s=10)

    assert balance_mt(ledger, customer_id) == 11_500 - 3_000
    assert {batch.state for batch in Spool(spool_path).batches()} == {State.SENT}


def test_the_cli_configured_by_environment_alone(
    server: DevServer, ledger: Ledger, customer_id: str, spool_path: Path
) -> None:
    fund(ledger, customer_id)
    env = {
        **os.environ,
        "PYTHONPATH": str(AGENT_DIR),
        "TOKEN_METER_CUSTOMER_ID": customer_id,
        "TOKEN_METER_SPOOL": str(spool_path),
        "AWS_ENDPOINT_URL_LAMBDA": server.url,  # boto3's own variable: no meter option
    }

    def cli(*arguments: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "token_meter", *arguments]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    assert cli("record", "api_call", "3", "--vm-id", "vm-1").returncode == 0
    assert cli("record", "api_call", "4", "--vm-id", "vm-1").returncode == 0
    assert cli("record", "file_upload", "2.5").returncode == 0
    flushed = cli("flush", "--timeout", "20")

    assert flushed.returncode == 0, flushed.stderr
    assert spent_mt(ledger, customer_id) == 7 * 100 + 2_500
    status = json.loads(cli("status", "--json").stdout)
    assert status["counts"]["sent"] == 1
    assert status["pending_lines"] == 0


# ---- a SIGKILL in the middle of flushing -------------------------------------------------

CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from botocore.config import Config
from token_meter import Meter

customer_id, spool, endpoint, lines_file = sys.argv[2:6]
meter = Meter(
    customer_id,
    spool_path=spool,
    endpoint_url=endpoint,
    boto_config=Config(
        connect_timeout=2, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 1}
    ),
    max_lines=20,
    flush_interval_s=3600,
    retry_base_s=0.05,
    retry_cap_s=0.2,
)
for line in open(lines_file):
    action, quantity, vm_id = line.split()
    meter.record(action, quantity, vm_id)
meter.flush(0)  # every recorded line is now in the spool: a kill cannot lose it
print("DURABLE", flush=True)
while not meter.flush(60):
    pass
print("DONE", flush=True)
"""


def slow_after_applying(server: DevServer, applied: threading.Event) -> Callable[..., Any]:
    """serve_invoke that debits, then dawdles before answering: a kill in that window
    leaves a batch the ledger has but the spool still calls `sending`."""
    real = server.serve_invoke

    def serve_invoke(name: str, invocation_type: str, payload: bytes) -> HttpResponse:
        response = real(name, invocation_type, payload)
        applied.set()
        time.sleep(0.3)
        return response

    return serve_invoke


@pytest.mark.parametrize("kill_at", ["after_the_debit_landed", "after_a_random_delay"])
def test_a_meter_killed_mid_flush_bills_every_line_exactly_once_after_restart(
    server: DevServer,
    ledger: Ledger,
    customer_id: str,
    spool_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kill_at: str,
) -> None:
    fund(ledger, customer_id)
    lines = make_lines(600, vms=30, seed=sum(map(ord, kill_at)))  # 150 distinct: 8 batches
    lines_file = tmp_path / "lines.txt"
    lines_file.write_text("".join(f"{a} {q} {v}\n" for a, q, v in lines))
    applied = threading.Event()
    monkeypatch.setattr(server, "serve_invoke", slow_after_applying(server, applied))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    arguments = [str(AGENT_DIR), customer_id, str(spool_path), server.url, str(lines_file)]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *arguments],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "DURABLE"
        if kill_at == "after_the_debit_landed":
            assert applied.wait(10)
        else:
            time.sleep(random.uniform(0.0, 1.0))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    monkeypatch.undo()

    with sqlite3.connect(spool_path) as probe:
        states = dict(probe.execute("SELECT state, COUNT(*) FROM batches GROUP BY state"))
    if kill_at == "after_the_debit_landed":
        assert states.get("sending") == 1, states  # killed between the debit and its reply

    restarted = Meter(
        customer_id,
        spool_path=spool_path,
        endpoint_url=server.url,
        boto_config=local_client_config(),
    )
    assert restarted.close(timeout_s=30)

    assert spent_mt(ledger, customer_id) == cost_mt(lines)
    batches = Spool(spool_path).batches()
    assert {batch.state for batch in batches} == {State.SENT}
    assert sorted(usage_entry_keys(ledger, customer_id)) == sorted(b.key for b in batches)


# ---- a server that fails for a while -----------------------------------------------------


def flaky(server: DevServer, failures: list[str], seen: list[str]) -> Callable[..., Any]:
    """serve_invoke that answers the first calls with the given failures, some of them
    after the debit was applied (the client must retry without billing twice)."""
    real = server.serve_invoke
    lock = threading.Lock()

    def serve_invoke(name: str, invocation_type: str, payload: bytes) -> HttpResponse:
        with lock:
            failure = failures.pop(0) if failures else "ok"
            seen.append(failure)
        if failure == "503":
            return lambda_error(503, "ServiceException", "the service is unavailable")
        if failure == "429":
            return lambda_error(429, "TooManyRequestsException", "Rate exceeded")
        if failure == "502_bare":
            return HttpResponse(502, [], b"Bad Gateway")
        if failure == "function_error":
            return function_error("Sandbox.Timedout", "Task timed out after 10.00 seconds", [])
        if failure == "timeout_then_apply":
            time.sleep(1.5)  # past the client's 1 s read timeout; then it debits anyway
            return real(name, invocation_type, payload)
        if failure == "apply_then_503":
            real(name, invocation_type, payload)
            return lambda_error(503, "ServiceException", "lost the reply")
        return real(name, invocation_type, payload)

    return serve_invoke


def test_503s_throttles_function_errors_and_timeouts_lose_nothing_and_double_nothing(
    server: DevServer,
    ledger: Ledger,
    customer_id: str,
    spool_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fund(ledger, customer_id)
    lines = make_lines(400, vms=24, seed=7)  # 120 distinct lines: 3 batches of <= 50
    failures = [
        "503",
        "timeout_then_apply",
        "429",
        "apply_then_503",
        "502_bare",
        "function_error",
        "timeout_then_apply",
        "apply_then_503",
    ]
    expected_failures = list(failures)
    seen: list[str] = []
    monkeypatch.setattr(server, "serve_invoke", flaky(server, failures, seen))
    with Meter(
        customer_id,
        spool_path=spool_path,
        endpoint_url=server.url,
        boto_config=local_client_config(read_timeout_s=1),
        max_lines=50,
        retry_base_s=0.05,
        retry_cap_s=0.5,
    ) as meter:
        for action, quantity, vm_id in lines:
            meter.record(action, quantity, vm_id)
        assert meter.flush(timeout_s=30)

    assert seen[: len(expected_failures)] == expected_failures  # every failure was met
    assert spent_mt(ledger, customer_id) == cost_mt(lines)
    batches = Spool(spool_path).batches()
    assert {batch.state for batch in batches} == {State.SENT}
    assert len(batches) == 3
    assert sum(batch.attempts for batch in batches) == len(seen)
    assert sorted(usage_entry_keys(ledger, customer_id)) == sorted(b.key for b in batches)
    replies = [json.loads(batch.reply_text or "{}") for batch in batches]
    assert any(reply["replayed"] for reply in replies)  # a lost reply was answered again
