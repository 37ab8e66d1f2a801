"""The ledger-stream function's part of template.yaml: event source, failure path, access."""

from __future__ import annotations

import json
from typing import Any

from local.template import load_template

RESOURCES = load_template().resources
FUNCTION = RESOURCES["LedgerStreamFunction"]["Properties"]


def test_event_source_reads_account_items_usage_entries_and_limit_marks_only() -> None:
    assert "Events" not in FUNCTION  # the mapping below, not a SAM event (see test_template)
    source = RESOURCES["LedgerStreamEventSource"]
    assert source["Type"] == "AWS::Lambda::EventSourceMapping"
    properties = source["Properties"]
    assert properties["FunctionName"] == {"Ref": "LedgerStreamFunction"}
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["LedgerTable", "StreamArn"]}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BisectBatchOnFunctionError"] is True
    assert properties["MaximumRetryAttempts"] == 10
    account, usage_entries, limit_marks = [
        json.loads(f["Pattern"]) for f in properties["FilterCriteria"]["Filters"]
    ]
    assert account == {"dynamodb": {"Keys": {"SK": {"S": ["ACCOUNT"]}}}}
    # Usage by VM (issue 25): a usage entry's INSERT, never its other kinds or a counter.
    assert usage_entries == {
        "eventName": ["INSERT"],
        "dynamodb": {
            "Keys": {"SK": {"S": [{"prefix": "TXN#"}]}},
            "NewImage": {"kind": {"S": ["usage"]}},
        },
    }
    # VmLimitReached: a VM's day counter once it carries the refusal mark, not its spending.
    assert limit_marks == {
        "dynamodb": {
            "Keys": {"SK": {"S": [{"prefix": "VMDAY#"}]}},
            "NewImage": {"limit_reached_at": {"S": [{"exists": True}]}},
        }
    }
    on_failure = properties["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Destination": {"Fn::GetAtt": ["LedgerStreamDLQ", "Arn"]}}


def test_dead_letter_queue_is_encrypted_and_keeps_14_days() -> None:
    queue = RESOURCES["LedgerStreamDLQ"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"] == {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 1209600}


def test_may_write_aggregates_and_markers_and_put_events_on_its_bus_only() -> None:
    statements: list[dict[str, Any]] = FUNCTION["Policies"][0]["Statement"]
    by_sid = {statement["Sid"]: statement for statement in statements}
    assert set(by_sid["AggregatesAndMarkers"]["Action"]) == {
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:GetItem",
    }
    assert by_sid["AggregatesAndMarkers"]["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}
    assert by_sid["LowBalanceEvents"]["Action"] == "events:PutEvents"
    assert by_sid["LowBalanceEvents"]["Resource"] == {"Fn::GetAtt": ["TokenBillingEventBus", "Arn"]}
    assert FUNCTION["Environment"]["Variables"]["EVENT_BUS_NAME"] == {"Ref": "TokenBillingEventBus"}
    assert RESOURCES["TokenBillingEventBus"]["Type"] == "AWS::Events::EventBus"
    assert "LedgerStreamFunctionLogGroup" in RESOURCES
