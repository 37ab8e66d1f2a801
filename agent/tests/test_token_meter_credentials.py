"""The meter carries the VM's agent credential on every op, never spools it, refreshes it
before it expires, and after `credential_expired` resends the same batch with a fresh one."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

from meter_fakes import FakeLambda, error_reply

from token_meter import Credentials, Meter, file_provider
from token_meter.credentials import credential_expiry_s


def fake_credential(vm: str, expires_at_s: float) -> str:
    """Shaped like the service's (its MAC is the service's business, not the agent's)."""
    claims = {"sub": "c", "vm": vm, "iat": 0, "exp": int(expires_at_s)}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"tbvm1.k1.{body}.mac-{vm}"


def test_every_op_carries_the_credential_and_the_spool_does_not(
    make_meter: Callable[..., Meter],
) -> None:
    client = FakeLambda()
    credential = fake_credential("vm-1", 4_000_000_000)
    meter = make_meter(client, credential=credential)
    meter.record("api_call", 3, vm_id="vm-1")
    meter.flush(timeout_s=5)
    assert [p["credential"] for p in client.payloads] == [credential]
    assert all("credential" not in batch.payload_text for batch in meter.spool.batches())


def test_a_credential_near_its_expiry_is_refreshed_before_sending() -> None:
    now = [1_000.0]
    minted: list[str] = []

    def provider() -> str:
        minted.append(fake_credential("vm-1", now[0] + 3_600))
        return minted[-1]

    credentials = Credentials(provider, now=lambda: now[0])
    first = credentials.current()
    assert credentials.current() == first  # fresh: no second call
    now[0] += 3_600 - 200  # inside the refresh margin
    second = credentials.current()
    assert second != first
    assert len(minted) == 2
    assert credential_expiry_s(second or "") == now[0] + 3_600


def test_an_expired_credential_is_replaced_and_the_batch_resent_under_its_key(
    make_meter: Callable[..., Meter],
) -> None:
    issued = iter(["one", "two", "three"])
    client = FakeLambda().then(error_reply("credential_expired"))
    meter = make_meter(
        client,
        credential=lambda: fake_credential(next(issued), 4_000_000_000),
        retry_base_s=0.01,
        retry_cap_s=0.02,
    )
    meter.record("api_call", 1)
    meter.flush(timeout_s=5)
    payloads = client.payloads
    assert len(payloads) == 2
    assert payloads[0]["idempotency_key"] == payloads[1]["idempotency_key"]
    assert payloads[0]["credential"].endswith("mac-one")
    assert payloads[1]["credential"].endswith("mac-two")
    assert meter.status().unfinished == 0


def test_a_mismatched_credential_is_final(make_meter: Callable[..., Meter]) -> None:
    client = FakeLambda().then(error_reply("credential_mismatch"))
    meter = make_meter(client, credential=fake_credential("vm-9", 4_000_000_000))
    meter.record("api_call", 1)
    meter.flush(timeout_s=5)
    assert len(client.payloads) == 1


def test_a_credential_file_is_reread_on_refresh(tmp_path: Path) -> None:
    path = tmp_path / "credential"
    path.write_text(fake_credential("vm-1", 0) + "\n")
    credentials = Credentials(file_provider(path))
    assert credentials.current() == fake_credential("vm-1", 0)
    path.write_text(fake_credential("vm-1", 4_000_000_000))
    credentials.refused("credential_expired")
    assert credentials.current() == fake_credential("vm-1", 4_000_000_000)
