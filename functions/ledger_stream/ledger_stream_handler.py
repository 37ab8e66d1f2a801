"""ledger-stream: the table's DynamoDB stream, off the debit path.

For every INSERT/MODIFY of an ACCOUNT item: the write is checked against the change it
recorded (`LedgerDrift`, issue 27), the usage it added goes into the customer's
daily aggregate, and a balance that crossed below the low-balance line puts one
`TokenBalanceLow` event on EventBridge. Both are idempotent, so a redelivered record is
skipped (metric `StreamRecordsSkipped`), not an error.

Per-VM limits and usage (issue 25, `vm_record` below): each usage entry inserted is counted
by VM and day, exactly once; a limited VM's day counter marked refused for the first time
puts one `VmLimitReached` event.

After the batch, each change is pushed to the customer's open WebSockets (the live balance,
`push_live_balances` below): one BatchGetItem of the watch markers of every customer
changed, then a connections Query per watched customer only, never failing the batch.

A record that fails is reported as a batch item failure; Lambda then retries from the first
failed sequence number. Every record after a failure is failed too, unprocessed: Lambda
delivers those again anyway, and applying a later change of the same account before the
failed one would move that day's `last_version` past it and skip it on the retry.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.clock import utc_now_iso
from token_billing.core.observability import count, logger, publish_metrics
from token_billing.domain.account_changes import apply_account_change
from token_billing.domain.auto_top_up.admission import TopUpTrigger
from token_billing.domain.ledger_drift import ledger_drift
from token_billing.domain.live_balance import push_account_changes
from token_billing.domain.low_balance import LowBalanceAlerts
from token_billing.domain.vm_limit_events import VmLimitAlerts
from token_billing.domain.vm_usage import apply_usage_entry
from token_billing.integrations.websocket_push import management_client, post_to_connection
from token_billing.runtime import (
    default_top_up_store,
    default_vm_limit_store,
    default_vm_usage,
    dynamodb_client,
    table_name,
)
from token_billing.store.connections import Connections
from token_billing.store.stream_images import (
    AccountChange,
    account_change,
    recorded_change,
    usage_entry_inserted,
    vm_limit_reached_mark,
)
from token_billing.store.table_layout import ACCOUNT_SK, ENTRY_PREFIX, VM_DAY_PREFIX
from token_billing.store.usage_aggregates import UsageAggregates

PROCESSED_EVENTS = frozenset({"INSERT", "MODIFY"})

dynamodb_client()  # create the DynamoDB client during init, not in the first batch


class EarlierRecordFailed(Exception):
    """Not processed because a record before it in the batch failed (see module doc)."""


@publish_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # Per invocation, not per module: the dev server may run two invocations at once.
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    aggregates = UsageAggregates(dynamodb_client(), table_name())
    alerts = LowBalanceAlerts(dynamodb_client(), table_name())
    tally: Counter[str] = Counter()
    top_up_trigger = TopUpTrigger(default_top_up_store())  # auto top-up: admits, never charges
    live_changes: list[AccountChange] = []  # pushed to watching sockets after the batch

    def record_handler(record: DynamoDBRecord) -> None:
        if processor.fail_messages:
            raise EarlierRecordFailed("an earlier record of this batch failed")
        stream: dict[str, Any] = record.raw_event.get("dynamodb") or {}
        keys = stream.get("Keys") or {}
        event_name = record.raw_event.get("eventName")
        sort_key = keys.get("SK", {}).get("S", "")
        if sort_key.startswith((ENTRY_PREFIX, VM_DAY_PREFIX)) and event_name in PROCESSED_EVENTS:
            tally[vm_record(event_name, sort_key, stream)] += 1
            return
        if sort_key != ACCOUNT_SK or event_name not in PROCESSED_EVENTS:
            # The event source's filter drops these; an event from elsewhere may not.
            tally["StreamRecordsSkipped"] += 1
            return
        change = account_change(stream.get("OldImage"), stream["NewImage"])
        live_changes.append(change)
        check_drift(stream, tally)
        outcome = apply_account_change(change, aggregates=aggregates, alerts=alerts)
        tally["UsageAggregatesApplied"] += outcome.aggregate_applied
        tally["LowBalanceEvents"] += outcome.alert_sent
        top_up_trigger.on_account_change(change)  # idempotent by the change's version
        if outcome.redelivered:
            tally["StreamRecordsSkipped"] += 1
            logger.info(
                "redelivered account change skipped",
                extra={"customer_id": change.customer_id, "version": change.version},
            )
        if outcome.alert_sent:
            logger.info(
                "TokenBalanceLow put",
                extra={"customer_id": change.customer_id, "version": change.version},
            )

    try:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        tally.update(push_live_balances(live_changes))
        for name in (
            "UsageAggregatesApplied",
            "LowBalanceEvents",
            "StreamRecordsSkipped",
            "LedgerDrift",
        ):
            count(name, tally[name])
        for name in VM_METRICS:
            count(name, tally[name])
        for name in LIVE_BALANCE_METRICS:  # only when something was pushed or failed
            count(name, tally[name])


# ---- per-VM usage and limits (issue 25) ------------------------------------------------

VM_METRICS = ("VmUsageEntriesApplied", "VmLimitReachedEvents")


def vm_record(event_name: str, sort_key: str, stream: dict[str, Any]) -> str:
    """A usage entry's INSERT counted by VM, or a VM's day counter first marked refused put
    as one `VmLimitReached`; the metric to count (a redelivery is a skipped record)."""
    new_image = stream.get("NewImage") or {}
    if sort_key.startswith(ENTRY_PREFIX):
        if event_name != "INSERT" or new_image.get("kind", {}).get("S") != "usage":
            return "StreamRecordsSkipped"  # the filter passes only these; another may not
        entry = usage_entry_inserted(new_image)
        applied = apply_usage_entry(entry, default_vm_usage(), now=utc_now_iso())
        return "VmUsageEntriesApplied" if applied else "StreamRecordsSkipped"
    mark = vm_limit_reached_mark(stream.get("OldImage"), new_image)
    if mark is None or not VmLimitAlerts(default_vm_limit_store()).notify(mark):
        return "StreamRecordsSkipped"
    logger.info("VmLimitReached put", extra={"customer_id": mark.customer_id, "vm_id": mark.vm_id})
    return "VmLimitReachedEvents"


def check_drift(stream: dict[str, Any], tally: Counter[str]) -> None:
    """Count and log an ACCOUNT write that disagrees with the change it recorded
    (`domain.ledger_drift`). Never fails the record: the drift is already written, and a
    failed record would only stall the shard behind it."""
    drift = ledger_drift(recorded_change(stream.get("OldImage"), stream["NewImage"]))
    if drift:
        tally["LedgerDrift"] += 1
        logger.error(
            "ledger drift",
            extra={
                "customer_id": drift.customer_id,
                "version": drift.version,
                "reasons": list(drift.reasons),
            },
        )


# ---- the live balance (issue 14): each change to the customer's open WebSockets ----------

LIVE_BALANCE_METRICS = ("BalanceMessagesSent", "SocketConnectionsGone", "BalancePushFailures")


def push_live_balances(changes: list[AccountChange]) -> Counter[str]:
    """After the batch's own work, never failing it: one BatchGetItem of the changed
    customers' watch markers, a connections Query per watched customer, then
    PostToConnection per message (`domain.live_balance`)."""
    if not changes:
        return Counter()
    outcome = push_account_changes(
        changes,
        connections=Connections(dynamodb_client(), table_name()),
        send=lambda connection_id, data: post_to_connection(
            management_client(), connection_id, data
        ),
    )
    for error in outcome.errors[:10]:
        logger.warning("live balance push failed", extra={"error": error})
    return Counter(
        BalanceMessagesSent=outcome.messages_sent,
        SocketConnectionsGone=outcome.connections_gone,
        BalancePushFailures=outcome.send_failures + outcome.lookup_failures,
    )
