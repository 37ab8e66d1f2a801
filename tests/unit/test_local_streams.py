"""The dev server's stand-ins for the stream event source mapping and EventBridge, without
DynamoDB: filters, the Lambda record shape, retries of batch item failures, PutEvents."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local.ddb_streams import (
    StreamPoller,
    lambda_record,
    matches,
    passes_filters,
    validate_pattern,
)
from local.fake_events import FakeEventBridge
from local.template import StreamSource, load_template

(SOURCE,) = [s for s in load_template().stream_sources() if s.function == "LedgerStreamFunction"]


def raw_record(sk: str, sequence: str = "1", name: str = "MODIFY") -> dict[str, Any]:
    """A record as boto3's GetRecords returns it from DynamoDB Local."""
    return {
        "eventID": f"e{sequence}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "ddblocal",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2026, 11, 25, 11, 34, tzinfo=UTC),
            "Keys": {"PK": {"S": "CUST#c1"}, "SK": {"S": sk}},
            "NewImage": {"PK": {"S": "CUST#c1"}, "SK": {"S": sk}, "z": {"B": b"\x00\xff"}},
            "SequenceNumber": sequence,
            "SizeBytes": 40,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


def test_template_stream_source_is_read_as_lambda_reads_it() -> None:
    assert SOURCE.function == "LedgerStreamFunction"
    assert SOURCE.table == "LedgerTable"
    assert (SOURCE.batch_size, SOURCE.starting_position) == (100, "LATEST")
    assert SOURCE.maximum_retry_attempts == 10
    assert SOURCE.report_batch_item_failures is True
    assert SOURCE.filter_patterns[0] == {"dynamodb": {"Keys": {"SK": {"S": ["ACCOUNT"]}}}}
    assert len(SOURCE.filter_patterns) == 3  # + usage entries and VM limit marks (issue 25)


def test_lambda_record_has_epoch_seconds_and_base64_binary() -> None:
    shaped = lambda_record(raw_record("ACCOUNT"), stream_arn="arn:s", region="us-east-1")
    assert shaped["dynamodb"]["ApproximateCreationDateTime"] == 1795606440
    assert shaped["dynamodb"]["NewImage"]["z"] == {"B": "AP8="}
    assert (shaped["eventSourceARN"], shaped["awsRegion"]) == ("arn:s", "us-east-1")
    json.dumps(shaped)  # what Lambda sends is JSON


def test_template_filter_keeps_only_the_account_item() -> None:
    shape = {"stream_arn": "arn:s", "region": "us-east-1"}
    assert passes_filters(SOURCE.filter_patterns, lambda_record(raw_record("ACCOUNT"), **shape))
    assert not passes_filters(SOURCE.filter_patterns, lambda_record(raw_record("TXN#t"), **shape))
    assert not passes_filters(
        SOURCE.filter_patterns, lambda_record(raw_record("ACCOUNT#HOLD#h"), **shape)
    )


def with_image(record: dict[str, Any], **attributes: dict[str, Any]) -> dict[str, Any]:
    record["dynamodb"]["NewImage"].update(attributes)
    return record


@pytest.mark.parametrize(
    ("record", "passes"),
    [
        (with_image(raw_record("TXN#t", name="INSERT"), kind={"S": "usage"}), True),
        (with_image(raw_record("TXN#t", name="INSERT"), kind={"S": "grant"}), False),
        (with_image(raw_record("TXN#t", name="MODIFY"), kind={"S": "usage"}), False),
        (with_image(raw_record("VMDAY#2026-12-01#vm-1"), limit_reached_at={"S": "t"}), True),
        (with_image(raw_record("VMDAY#2026-12-01#vm-1"), spent_mt={"N": "5"}), False),
        (with_image(raw_record("VMUSE#2026-12#vm-1"), limit_reached_at={"S": "t"}), False),
    ],
)
def test_template_filter_passes_usage_entries_and_vm_limit_marks_only(
    record: dict[str, Any], passes: bool
) -> None:
    shaped = lambda_record(record, stream_arn="arn:s", region="us-east-1")
    assert passes_filters(SOURCE.filter_patterns, shaped) is passes


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ({"a": [{"exists": True}]}, {"a": 1}, True),
        ({"a": [{"exists": False}]}, {"b": 1}, True),
        ({"a": [{"prefix": "TXN#"}]}, {"a": "TXN#1"}, True),
        ({"a": [{"anything-but": ["x", "y"]}]}, {"a": "x"}, False),
        ({"a": ["x"]}, {"a": ["y", "x"]}, True),  # an array matches if any element does
        ({"a": {"b": ["x"]}}, {"a": "x"}, False),
    ],
)
def test_filter_operators(pattern: dict[str, Any], value: dict[str, Any], expected: bool) -> None:
    validate_pattern(pattern)
    assert matches(pattern, value) is expected


@pytest.mark.parametrize(
    "pattern", [{"a": [{"numeric": [">", 1]}]}, {"a": "x"}, {"a": {"exists": True}}]
)
def test_a_filter_the_poller_would_misread_is_refused(pattern: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="filter"):
        validate_pattern(pattern)


class FakeFunction:
    """Answers with batch item failures for the sequence numbers it is told to fail."""

    def __init__(self, fail: list[set[str]]) -> None:
        self.fail = fail
        self.batches: list[list[str]] = []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        sequences = [record["dynamodb"]["SequenceNumber"] for record in event["Records"]]
        self.batches.append(sequences)
        failing = self.fail.pop(0) if self.fail else set()
        return {"batchItemFailures": [{"itemIdentifier": s} for s in sequences if s in failing]}


def poller(function: FakeFunction, source: StreamSource = SOURCE) -> StreamPoller:
    created = StreamPoller(source, function, endpoint="http://127.0.0.1:9")
    created._stream_arn = "arn:s"  # no DynamoDB Local needed to deliver
    return created


def test_batch_item_failures_are_retried_from_the_first_failed_record() -> None:
    function = FakeFunction(fail=[{"2"}])
    records = [raw_record("ACCOUNT", str(n)) for n in (1, 2, 3)] + [raw_record("TXN#x", "4")]

    assert poller(function)._deliver(records) == 3

    assert function.batches == [["1", "2", "3"], ["2", "3"]]


def test_a_record_failing_every_attempt_is_given_up_and_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    function = FakeFunction(fail=[{"1"}] * 10)
    stubborn = poller(function)

    stubborn._deliver([raw_record("ACCOUNT", "1")])

    assert len(function.batches) == 4  # the first attempt and 3 local retries
    assert [record["eventID"] for record in stubborn.failed] == ["e1"]
    assert "gave up on 1 stream record" in capsys.readouterr().err


def test_fake_eventbridge_records_and_logs_exact_entries(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    bus = FakeEventBridge(log, echo=False)
    entry = {"Source": "s", "DetailType": "d", "Detail": '{"a":1}', "EventBusName": "b"}
    missing = {"Source": "s", "Detail": "{}"}

    status, reply = bus.handle(
        "AWSEvents.PutEvents", json.dumps({"Entries": [entry, missing]}).encode()
    )

    assert status == 200
    assert reply["FailedEntryCount"] == 1
    assert reply["Entries"][1]["ErrorCode"] == "InvalidArgument"
    assert bus.snapshot() == [entry]
    assert [json.loads(line) for line in log.read_text().splitlines()] == [entry]


def test_fake_eventbridge_refuses_on_request_and_unknown_operations() -> None:
    bus = FakeEventBridge(None, echo=False)
    bus.refuse_next(1)
    entry = {"Source": "s", "DetailType": "d", "Detail": "{}"}
    body = json.dumps({"Entries": [entry]}).encode()

    assert (
        bus.handle("AWSEvents.PutEvents", body)[1]["Entries"][0]["ErrorCode"] == "InternalFailure"
    )
    assert "EventId" in bus.handle("AWSEvents.PutEvents", body)[1]["Entries"][0]
    assert bus.handle("AWSEvents.ListRules", b"{}")[0] == 400
