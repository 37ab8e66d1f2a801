"""Per-VM agent credentials (issue 16): customer A's agent cannot debit, hold, settle,
renew or release for customer B or for another VM; expired, forged and missing credentials
are refused; nothing moves and no DynamoDB request is sent for a refused op, and a valid
debit still sends exactly one."""

from __future__ import annotations

import base64
import json
import os
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import FakeLambdaContext
from tests.integration.helpers import assert_consistent, fund
from token_billing import runtime
from token_billing.domain.agent_credentials import CredentialKeys, mint_credential
from token_billing.integrations import agent_credential_keys
from token_billing.integrations.agent_credential_keys import forget_keys
from token_billing.store.ledger import Ledger

KEYS = {"current": "k2", "k1": "a" * 40, "k2": "b" * 40}
OTHER_KEYS = {"current": "k2", "k2": "c" * 40}


@pytest.fixture(autouse=True)
def credentials_on(local_aws: None) -> Iterator[None]:
    os.environ.update(
        REQUIRE_AGENT_CREDENTIALS="true", STAGE="local", AGENT_CREDENTIAL_KEYS=json.dumps(KEYS)
    )
    forget_keys()
    yield
    forget_keys()


def credential(
    customer: str, vm_id: str = "vm-1", *, ttl_s: int = 600, keys: dict[str, str] = KEYS, **kw: Any
) -> str:
    return mint_credential(
        CredentialKeys.from_json(json.dumps(keys)),
        customer_id=customer,
        vm_id=vm_id,
        now_s=kw.get("now_s", int(time.time())),
        ttl_s=ttl_s,
    )


class DynamoRequests:
    """Counts the requests the handlers' DynamoDB client sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        runtime.dynamodb_client().meta.events.register("before-send.dynamodb", self._count)

    def _count(self, request: Any, **_: Any) -> None:
        self.sent.append(request.headers.get("X-Amz-Target", b"").decode())


def invoke(payload: dict[str, Any]) -> dict[str, Any]:
    import debit_handler

    reply: dict[str, Any] = debit_handler.lambda_handler(payload, FakeLambdaContext())
    return reply


def ops(customer: str) -> dict[str, dict[str, Any]]:
    usage = [{"action": "vm_runtime", "quantity": 5, "vm_id": "vm-1"}]
    return {
        "debit": {"customer_id": customer, "idempotency_key": "k1", "usage": usage},
        "hold": {
            "op": "hold",
            "customer_id": customer,
            "hold_id": "h-new",
            "amount": 10,
            "expires_in_s": 600,
        },
        "settle": {"op": "settle", "customer_id": customer, "hold_id": "h1", "usage": usage},
        "renew": {
            "op": "renew",
            "customer_id": customer,
            "hold_id": "h1",
            "usage": usage,
            "next_hold_id": "h2",
            "amount": 10,
            "expires_in_s": 600,
        },
        "release": {"op": "release", "customer_id": customer, "hold_id": "h1"},
    }


def with_hold(ledger: Ledger, customer: str) -> None:
    fund(ledger, customer, 1_000_000)
    placed = invoke(
        {
            "op": "hold",
            "customer_id": customer,
            "hold_id": "h1",
            "amount": 100,
            "expires_in_s": 600,
            "credential": credential(customer, "vm-1"),
        }
    )
    assert placed["ok"], placed


@pytest.fixture
def victim(ledger: Ledger) -> str:
    customer = f"cust_b_{time.time_ns()}"
    with_hold(ledger, customer)
    return customer


@pytest.mark.parametrize("op", ["debit", "hold", "settle", "renew", "release"])
def test_customer_a_cannot_act_for_customer_b(
    op: str, ledger: Ledger, customer_id: str, victim: str
) -> None:
    before = assert_consistent(ledger, victim)
    requests = DynamoRequests()
    payload = ops(victim)[op] | {"credential": credential(customer_id, "vm-1")}
    reply = invoke(payload)
    assert reply["ok"] is False
    assert reply["error"]["code"] == "credential_mismatch"
    assert reply["error"]["retryable"] is False
    assert "customer" in reply["error"]["message"]
    assert requests.sent == []  # refused before DynamoDB was asked anything
    assert assert_consistent(ledger, victim) == before


@pytest.mark.parametrize("op", ["debit", "settle", "renew", "release"])
def test_another_vm_of_the_same_customer_is_refused(op: str, ledger: Ledger, victim: str) -> None:
    before = assert_consistent(ledger, victim)
    reply = invoke(ops(victim)[op] | {"credential": credential(victim, "vm-2")})
    assert reply["ok"] is False
    assert reply["error"]["code"] == "credential_mismatch"
    assert "VM" in reply["error"]["message"]
    assert assert_consistent(ledger, victim) == before


def test_a_hold_for_another_vm_is_refused(ledger: Ledger, victim: str) -> None:
    payload = ops(victim)["hold"] | {"vm_id": "vm-9", "credential": credential(victim, "vm-1")}
    reply = invoke(payload)
    assert reply["error"]["code"] == "credential_mismatch"


@pytest.mark.parametrize(
    "case",
    ["missing", "expired", "forged claims", "other key", "unknown key id", "garbage", "huge"],
)
def test_expired_forged_and_missing_credentials_are_refused(
    case: str, ledger: Ledger, victim: str
) -> None:
    good = credential(victim, "vm-1")
    version, key_id, body, mac = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged_body = claims | {"exp": int(time.time()) + 10**6}
    forged = base64.urlsafe_b64encode(json.dumps(forged_body).encode()).rstrip(b"=").decode()
    tokens: dict[str, Any] = {
        "missing": None,
        "expired": credential(victim, now_s=int(time.time()) - 700, ttl_s=600),
        "forged claims": f"{version}.{key_id}.{forged}.{mac}",
        "other key": credential(victim, keys=OTHER_KEYS),
        "unknown key id": f"{version}.k9.{body}.{mac}",
        "garbage": "tbvm1.\x00.\xff.%%",
        "huge": "tbvm1." + "A" * 5_000,
    }
    expected = "credential_expired" if case == "expired" else "credential_invalid"
    before = assert_consistent(ledger, victim)
    requests = DynamoRequests()
    for op, payload in ops(victim).items():
        if tokens[case] is not None:
            payload["credential"] = tokens[case]
        reply = invoke(payload)
        assert reply["ok"] is False, (op, reply)
        assert reply["error"]["code"] == expected, (op, reply)
    assert requests.sent == []
    assert assert_consistent(ledger, victim) == before


def test_the_own_vm_may_do_everything_and_a_debit_is_one_dynamodb_request(
    ledger: Ledger, victim: str
) -> None:
    mine = credential(victim, "vm-1")
    requests = DynamoRequests()
    reply = invoke(ops(victim)["debit"] | {"credential": mine})
    assert reply["ok"], reply
    assert requests.sent == ["DynamoDB_20120810.TransactWriteItems"]
    renew = invoke(ops(victim)["renew"] | {"credential": mine})
    assert renew["ok"], renew
    assert renew["renewed"] is True
    # The next hold was placed for the credential's VM: only vm-1 may settle it.
    other = invoke(
        {"op": "release", "customer_id": victim, "hold_id": "h2"}
        | {"credential": credential(victim, "vm-2")}
    )
    assert other["error"]["code"] == "credential_mismatch"
    released = invoke({"op": "release", "customer_id": victim, "hold_id": "h2", "credential": mine})
    assert released["ok"], released
    assert_consistent(ledger, victim)


def test_a_rotated_key_keeps_old_credentials_valid_until_they_expire(
    ledger: Ledger, victim: str
) -> None:
    old = credential(victim, keys={"current": "k1", "k1": "a" * 40})
    reply = invoke(ops(victim)["debit"] | {"credential": old})
    assert reply["ok"], reply  # k1 is still in the document, k2 is current


def test_credentials_off_on_trusted_hosts(ledger: Ledger, victim: str) -> None:
    os.environ["REQUIRE_AGENT_CREDENTIALS"] = "false"
    reply = invoke(ops(victim)["debit"])
    assert reply["ok"], reply


class KeyReads:
    """Counts reads of the key document and lets a test move the container's clock."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, document: dict[str, str]) -> None:
        self.document = document
        self.reads = 0
        self.now = 1_000.0
        monkeypatch.setattr(agent_credential_keys, "_read_keys", self._read)
        clock = type("Clock", (), {"monotonic": staticmethod(lambda: self.now)})
        monkeypatch.setattr(agent_credential_keys, "time", clock)
        forget_keys()  # what the fixtures read before this counter was set

    def _read(self) -> str:
        self.reads += 1
        return json.dumps(self.document)


def test_a_key_made_current_after_the_cache_is_accepted_on_its_first_call(
    monkeypatch: pytest.MonkeyPatch, ledger: Ledger, victim: str
) -> None:
    reads = KeyReads(monkeypatch, KEYS)
    assert invoke(ops(victim)["debit"] | {"credential": credential(victim)})["ok"]
    assert reads.reads == 1  # the container now holds k1 and k2 for 15 minutes
    rotated = KEYS | {"current": "k3", "k3": "d" * 40}
    reads.document = rotated
    reply = invoke(
        ops(victim)["debit"]
        | {"idempotency_key": "k3-first", "credential": credential(victim, keys=rotated)}
    )
    assert reply["ok"], reply
    assert reads.reads == 2  # one read again, at once, not after the quarter hour


def test_unknown_key_ids_cause_at_most_one_read_a_minute(
    monkeypatch: pytest.MonkeyPatch, ledger: Ledger, victim: str
) -> None:
    reads = KeyReads(monkeypatch, KEYS)
    before = assert_consistent(ledger, victim)
    rng = random.Random(7)
    for attempt in range(1_000):
        forged_keys = {
            "current": f"x{rng.getrandbits(40):x}",
            f"x{rng.getrandbits(40):x}": "e" * 40,
        }
        forged_keys["current"] = next(key for key in forged_keys if key != "current")
        forged = credential(victim, keys=forged_keys)
        reply = invoke(
            ops(victim)["debit"] | {"idempotency_key": f"f{attempt}", "credential": forged}
        )
        assert reply["error"]["code"] == "credential_invalid", reply
        reads.now += 0.05  # 1,000 calls over 50 s of the container's clock
    assert reads.reads == 2  # the first document, then one read again within the minute
    reads.now += 60
    invoke(ops(victim)["debit"] | {"credential": credential(victim, keys=forged_keys)})
    assert reads.reads == 3  # a minute on, one more
    assert assert_consistent(ledger, victim) == before
