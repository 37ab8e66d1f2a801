"""The `token-meter` command: record is durable at once, flush batches and sends, status
reports; configuration comes from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from meter_fakes import FakeLambda, error_reply

from token_meter import cli, meter
from token_meter.spool import Spool


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, spool_path: Path, customer_id: str) -> FakeLambda:
    fake = FakeLambda()
    monkeypatch.setenv("TOKEN_METER_CUSTOMER_ID", customer_id)
    monkeypatch.setenv("TOKEN_METER_SPOOL", str(spool_path))
    monkeypatch.setenv("TOKEN_METER_FUNCTION", "arn:aws:lambda:us-east-1:1:function:Debit")
    monkeypatch.setattr(meter, "make_lambda_client", lambda *args, **kwargs: fake)
    return fake


def test_record_is_in_the_spool_when_the_command_returns(
    fake: FakeLambda, spool_path: Path
) -> None:
    assert cli.main(["record", "api_call", "3", "--vm-id", "vm-1"]) == 0
    assert cli.main(["record", "api_call", "2.5", "--vm-id", "vm-1"]) == 0

    assert Spool(spool_path).status().pending_lines == 2
    assert fake.calls == []


def test_flush_batches_the_recorded_lines_into_one_debit(
    fake: FakeLambda, spool_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["record", "api_call", "3", "--vm-id", "vm-1"])
    cli.main(["record", "api_call", "2.5", "--vm-id", "vm-1"])
    cli.main(["record", "screenshot", "1"])

    assert cli.main(["flush", "--timeout", "5"]) == 0

    assert len(fake.calls) == 1
    assert fake.payloads[0]["usage"] == [
        {"action": "api_call", "quantity": "5.5", "vm_id": "vm-1"},
        {"action": "screenshot", "quantity": "1"},
    ]
    assert "sent 1" in capsys.readouterr().out
    assert Spool(spool_path).status().pending_lines == 0


def test_bad_record_is_a_usage_error(
    fake: FakeLambda, spool_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["record", "gpu_hour", "1"]) == cli.EXIT_USAGE
    assert cli.main(["record", "api_call", "-1"]) == cli.EXIT_USAGE
    assert "unknown action" in capsys.readouterr().err
    assert Spool(spool_path).status().pending_lines == 0


def test_missing_customer_id_is_a_usage_error(
    fake: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOKEN_METER_CUSTOMER_ID")

    assert cli.main(["record", "api_call", "1"]) == cli.EXIT_USAGE
    assert cli.main(["flush"]) == cli.EXIT_USAGE


def test_refusals_show_in_the_exit_status_and_in_status_json(
    fake: FakeLambda, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.then(error_reply("insufficient_tokens"))
    cli.main(["record", "ai_message", "4"])

    assert cli.main(["flush", "--timeout", "5"]) == cli.EXIT_KEPT_BACK
    capsys.readouterr()
    assert cli.main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"]["refused"] == 1
    assert status["refused"][0]["payload"]["usage"] == [{"action": "ai_message", "quantity": "4"}]
    assert status["refused"][0]["last_error"].startswith("insufficient_tokens")

    assert cli.main(["retry-refused", "--timeout", "5"]) == 0
    assert fake.calls[0] == fake.calls[1]


def test_flush_that_cannot_send_exits_1_and_keeps_the_batch(
    fake: FakeLambda, spool_path: Path
) -> None:
    fake.responder = lambda payload: error_reply("service_unavailable", retryable=True)
    cli.main(["record", "api_call", "1"])

    assert cli.main(["flush", "--timeout", "0.2"]) == cli.EXIT_UNSENT

    assert Spool(spool_path).status().unfinished == 1


def test_status_text(fake: FakeLambda, capsys: pytest.CaptureFixture[str]) -> None:
    fake.then(error_reply("invalid_request"))
    cli.main(["record", "api_call", "1"])
    cli.main(["flush", "--timeout", "5"])
    capsys.readouterr()

    assert cli.main(["status"]) == 0

    out = capsys.readouterr().out
    assert "invalid 1" in out
    assert "invalid  debit" in out
