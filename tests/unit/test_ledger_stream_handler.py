"""The ledger-stream handler on moto with the sample stream event from events/ledger_stream/:
the day's aggregate, TokenBalanceLow on moto's EventBridge (the PutEvents request captured
from the handler's own client), redelivery, and the partial batch response."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.conftest import FakeLambdaContext, load_event
from token_billing.domain.account_changes import LowBalanceCrossing
from token_billing.domain.low_balance import LowBalanceAlerts
from token_billing.integrations import eventbridge
from token_billing.integrations.eventbridge import EventPublishFailed

BUS = "token-billing-test-events"
SAMPLE = "ledger_stream/account-modify.json"
KEY = {"PK": {"S": "CUST#cust_demo"}, "SK": {"S": "USAGE#2026-11-25"}}
MARKER = {"PK": {"S": "CUST#cust_demo"}, "SK": {"S": "LOWBALANCE#000000000003"}}


@pytest.fixture
def put_events(moto_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The PutEvents entries the handler's events client sends to moto's event bus.

    (A rule forwarding to SQS would be closer to a consumer, but moto's targets need
    jsonpath-ng, which the project does not install.)"""
    monkeypatch.delenv("AWS_ENDPOINT_URL_EVENTBRIDGE", raising=False)
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    boto3.client("events", region_name="us-east-1").create_event_bus(Name=BUS)
    eventbridge.events_client.cache_clear()
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.extend(json.loads(params["body"])["Entries"])

    client: Any = eventbridge.events_client()
    client.meta.events.register("before-call.events.PutEvents", record)
    yield sent
    eventbridge.events_client.cache_clear()


@pytest.fixture
def handler(moto_table: str) -> Any:
    import ledger_stream_handler

    return ledger_stream_handler.lambda_handler


def details(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for entry in entries:
        assert (entry["Source"], entry["DetailType"]) == ("token-billing", "TokenBalanceLow")
        assert entry["EventBusName"] == BUS
    return [json.loads(entry["Detail"]) for entry in entries]


def get(key: dict[str, Any]) -> dict[str, Any] | None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    item: dict[str, Any] | None = client.get_item(TableName="LedgerTable", Key=key).get("Item")
    return item


def emf(output: str) -> dict[str, float]:
    """The metric values of the handler's EMF line(s) on stdout."""
    values: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                values[metric["Name"]] = sum(document[metric["Name"]])
    return values


def test_sample_event_aggregates_usage_and_puts_token_balance_low(
    handler: Any,
    put_events: list[dict[str, Any]],
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reply = handler(load_event(SAMPLE), lambda_context)

    assert reply == {"batchItemFailures": []}
    aggregate = get(KEY)
    assert aggregate is not None
    assert aggregate["used_vm_runtime_mt"] == {"N": "10000"}  # 90 -> 100 minutes
    assert aggregate["used_screenshot_mt"] == {"N": "1000"}  # new action: from zero
    assert "used_api_call_mt" not in aggregate  # unchanged by this write
    assert aggregate["last_version"] == {"N": "3"}
    assert details(put_events) == [
        {
            "id": "cust_demo:3",
            "customer_id": "cust_demo",
            "balance": "497.3",
            "balance_mt": 497_300,
            "available": "497.3",
            "available_mt": 497_300,
            "threshold": "500",
            "threshold_mt": 500_000,
            "version": 3,
            "crossed_at": "2026-11-25T11:39:53.959080Z",
        }
    ]
    assert get(MARKER) is not None
    assert emf(capsys.readouterr().out) == {
        "UsageAggregatesApplied": 1,
        "LowBalanceEvents": 1,
    }  # a count of zero is not printed


def test_redelivered_sample_event_changes_nothing_and_is_counted_as_skipped(
    handler: Any,
    put_events: list[dict[str, Any]],
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler(load_event(SAMPLE), lambda_context)
    capsys.readouterr()

    reply = handler(load_event(SAMPLE), lambda_context)

    assert reply == {"batchItemFailures": []}
    assert get(KEY)["used_vm_runtime_mt"] == {"N": "10000"}  # type: ignore[index]
    assert len(put_events) == 1  # the first delivery's
    assert emf(capsys.readouterr().out) == {"StreamRecordsSkipped": 1}


def test_other_items_and_removals_are_skipped(
    handler: Any, put_events: list[dict[str, Any]], lambda_context: FakeLambdaContext
) -> None:
    entry = copy.deepcopy(load_event(SAMPLE)["Records"][0])
    entry["dynamodb"]["Keys"]["SK"] = {"S": "TXN#txn_abc"}
    removal = copy.deepcopy(load_event(SAMPLE)["Records"][0])
    removal["eventName"] = "REMOVE"
    removal["dynamodb"]["SequenceNumber"] = "109587300000000061876434298"

    assert handler({"Records": [entry, removal]}, lambda_context) == {"batchItemFailures": []}
    assert get(KEY) is None
    assert put_events == []


def test_a_failed_record_fails_every_later_one_for_lambda_to_retry_in_order(
    handler: Any, put_events: list[dict[str, Any]], lambda_context: FakeLambdaContext
) -> None:
    good = load_event(SAMPLE)["Records"][0]
    broken = copy.deepcopy(good)
    del broken["dynamodb"]["NewImage"]["updated_at"]
    broken["dynamodb"]["SequenceNumber"] = "2"
    later = copy.deepcopy(good)
    later["dynamodb"]["SequenceNumber"] = "3"

    reply = handler({"Records": [good, broken, later]}, lambda_context)

    assert reply == {"batchItemFailures": [{"itemIdentifier": "2"}, {"itemIdentifier": "3"}]}


def test_a_batch_whose_every_record_fails_is_a_function_error_lambda_bisects(
    handler: Any, put_events: list[dict[str, Any]], lambda_context: FakeLambdaContext
) -> None:
    broken = load_event(SAMPLE)["Records"][0]
    del broken["dynamodb"]["NewImage"]["updated_at"]
    with pytest.raises(BatchProcessingError):
        handler({"Records": [broken]}, lambda_context)


class RefusingEvents:
    def __init__(self) -> None:
        self.calls = 0

    def put_events(self, *, Entries: Any) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.calls += 1
        return {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}],
        }


def test_a_refused_entry_raises_and_leaves_no_marker(moto_table: str) -> None:
    refusing = RefusingEvents()
    alerts = LowBalanceAlerts(
        boto3.client("dynamodb", region_name="us-east-1"),
        moto_table,
        events=lambda: refusing,
        bus_name=lambda: BUS,
    )
    crossing = LowBalanceCrossing("cust_demo", 3, 497_300, 497_300, "2026-11-25T11:39:53Z")

    with pytest.raises(EventPublishFailed, match="InternalFailure"):
        alerts.notify(crossing)

    assert refusing.calls == 1
    assert get(MARKER) is None  # so the retried record puts the event again


def test_handler_imports_neither_stripe_nor_pydantic_nor_xray() -> None:
    from tests.unit.test_cold_imports import imported

    assert imported("ledger_stream_handler", "ledger_stream", ["stripe", "pydantic"]) == []
    assert imported("ledger_stream_handler", "ledger_stream", ["aws_xray_sdk"]) == []
