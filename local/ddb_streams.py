"""A table's DynamoDB Local stream delivered to a template function, the way Lambda's event
source mapping delivers it: filtered by the template's FilterCriteria, batched, shaped as the
real `aws:dynamodb` event, with batch item failures retried from the first failed record.

Differences from Lambda, on purpose: one poller thread for all shards (Lambda runs one per
shard), a few local retries instead of the template's MaximumRetryAttempts, no bisecting,
and a batch that still fails is printed instead of sent to the OnFailure queue.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from local import dynamodb_local
from local.template import StreamSource

POLL_INTERVAL_S = 0.5
# Per shard and poll: reads while records keep coming, so a burst drains within one poll.
MAX_READS_PER_SHARD = 20
MAX_DESCRIBE_PAGES = 50
LOCAL_RETRY_ATTEMPTS = 3
RETRY_PAUSE_S = 0.2
FILTER_OPERATORS = frozenset({"exists", "prefix", "anything-but"})

Invoke = Callable[[dict[str, Any]], Any]


# ---- Lambda event filtering (the subset the template uses, and a little more) -------------


def validate_pattern(pattern: Mapping[str, Any]) -> None:
    """Refuse a filter this runner would misread, before it silently drops records."""
    for key, expected in pattern.items():
        if isinstance(expected, Mapping):
            validate_pattern(expected)
        elif isinstance(expected, list):
            for rule in expected:
                if isinstance(rule, Mapping) and not set(rule) <= FILTER_OPERATORS:
                    raise ValueError(f"filter operator {sorted(rule)} is not supported locally")
        else:
            raise ValueError(f"filter pattern value of {key!r} must be an object or a list")


def _rule_matches(rule: Any, present: bool, actual: Any) -> bool:
    if isinstance(rule, Mapping):
        ((operator, argument),) = rule.items()
        if operator == "exists":
            return present is bool(argument)
        if operator == "prefix":
            return present and isinstance(actual, str) and actual.startswith(argument)
        excluded = argument if isinstance(argument, list) else [argument]
        return present and actual not in excluded  # anything-but
    if isinstance(actual, list):  # an array in the record matches if any element does
        return present and rule in actual
    return present and actual == rule


def matches(pattern: Mapping[str, Any], value: Any) -> bool:
    """Whether `value` (a Lambda-shaped record) matches one filter pattern."""
    for key, expected in pattern.items():
        present = isinstance(value, Mapping) and key in value
        actual = value[key] if present else None
        if isinstance(expected, Mapping):
            if not present or not matches(expected, actual):
                return False
        elif not any(_rule_matches(rule, present, actual) for rule in expected):
            return False
    return True


def passes_filters(patterns: Sequence[Mapping[str, Any]], record: Mapping[str, Any]) -> bool:
    """No filters pass everything; several are alternatives, as in FilterCriteria."""
    return not patterns or any(matches(pattern, record) for pattern in patterns)


# ---- the event Lambda sends ------------------------------------------------------------


def wire_value(value: Any) -> Any:
    """An attribute value as JSON carries it: boto3 decodes B/BS to bytes, Lambda sends
    base64 text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return {key: wire_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [wire_value(item) for item in value]
    return value


def lambda_record(record: Mapping[str, Any], *, stream_arn: str, region: str) -> dict[str, Any]:
    """A GetRecords record as one record of Lambda's DynamoDB stream event."""
    stream = record["dynamodb"]
    created = stream.get("ApproximateCreationDateTime")
    shaped: dict[str, Any] = {}
    if created is not None:
        # boto3 parses it to a datetime; Lambda sends epoch seconds as a number.
        shaped["ApproximateCreationDateTime"] = (
            int(created.timestamp()) if isinstance(created, datetime) else created
        )
    for name in ("Keys", "NewImage", "OldImage"):
        if name in stream:
            shaped[name] = wire_value(stream[name])
    for name in ("SequenceNumber", "SizeBytes", "StreamViewType"):
        if name in stream:
            shaped[name] = stream[name]
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": shaped,
        "eventSourceARN": stream_arn,
    }


def stream_event(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def local_client_arguments(endpoint: str) -> dict[str, Any]:
    """boto3 client arguments for DynamoDB Local. The credentials must be the handlers' own:
    without -sharedDb, DynamoDB Local keeps one database per access key and region."""
    from botocore.config import Config

    return {
        "endpoint_url": endpoint,
        "region_name": dynamodb_local.LOCAL_REGION,
        "config": Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2}),
        **dynamodb_local.LOCAL_CREDENTIALS,
    }


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    return str((response or {}).get("Error", {}).get("Code", ""))


class StreamPoller:
    """Follows every shard of one table's stream and delivers batches to one function."""

    def __init__(
        self,
        source: StreamSource,
        invoke: Invoke,
        *,
        endpoint: str,
        region: str = dynamodb_local.LOCAL_REGION,
        interval_s: float = POLL_INTERVAL_S,
        attempts: int = LOCAL_RETRY_ATTEMPTS,
    ) -> None:
        for pattern in source.filter_patterns:
            validate_pattern(pattern)
        self.source = source
        self._invoke = invoke
        self._region = region
        self._interval_s = interval_s
        limit = source.maximum_retry_attempts
        self._attempts = 1 + (attempts if limit < 0 else min(attempts, limit))
        import boto3

        self._ddb = boto3.client("dynamodb", **local_client_arguments(endpoint))
        # No type stubs for DynamoDB Streams are installed: Any.
        self._streams: Any = boto3.client("dynamodbstreams", **local_client_arguments(endpoint))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream_arn = ""
        self._iterators: dict[str, str] = {}  # open shards being followed -> next iterator
        self._pending: dict[str, str | None] = {}  # shards waiting for their parent -> parent
        self._finished: set[str] = set()  # closed shards read to their end
        self._last_sequence: dict[str, str] = {}
        self._last_error = ""
        self.delivered = 0  # records handed to the function, retries not counted
        self.failed: list[dict[str, Any]] = []  # records given up on after every retry

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> StreamPoller:
        """Position at the stream's tip (or start) now, then poll in a background thread:
        a write made after start() returns is always delivered."""
        self._position(initial=True)
        self._thread = threading.Thread(
            target=self._run, name=f"stream-{self.source.function}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                print(f"{self._thread.name} did not stop within {timeout_s} s", file=sys.stderr)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
                self._last_error = ""
            except Exception as error:
                # Keep polling (DynamoDB Local may be restarting); say each new error once.
                message = f"{type(error).__name__}: {error}"
                if message != self._last_error:
                    print(f"stream poller for {self.source.function}: {message}", file=sys.stderr)
                    self._last_error = message
                if error_code(error) == "ResourceNotFoundException":
                    self._reset()
            self._stop.wait(self._interval_s)

    # ---- shards ------------------------------------------------------------------------

    def _reset(self) -> None:
        """The table or its stream was replaced: start over at the new stream's tip."""
        self._stream_arn = ""
        self._iterators.clear()
        self._pending.clear()
        self._finished.clear()
        self._last_sequence.clear()

    def _describe_shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamArn": self._stream_arn}
        for _ in range(MAX_DESCRIBE_PAGES):
            description = self._streams.describe_stream(**kwargs)["StreamDescription"]
            shards.extend(description.get("Shards", []))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            kwargs["ExclusiveStartShardId"] = last
        raise RuntimeError(f"more than {MAX_DESCRIBE_PAGES} pages of shards")

    def _iterator(self, shard_id: str, position: str, sequence: str | None = None) -> str:
        kwargs: dict[str, Any] = {
            "StreamArn": self._stream_arn,
            "ShardId": shard_id,
            "ShardIteratorType": position,
        }
        if sequence is not None:
            kwargs["SequenceNumber"] = sequence
        iterator: str = self._streams.get_shard_iterator(**kwargs)["ShardIterator"]
        return iterator

    def _position(self, *, initial: bool) -> None:
        """Learn new shards. At start, open shards begin at the configured position and
        closed ones count as read; a shard born later is read from its start once its
        parent is finished, which keeps one item's records in order across a split."""
        if not self._stream_arn:
            table = self._ddb.describe_table(TableName=self.source.table)["Table"]
            arn = table.get("LatestStreamArn")
            if not arn:
                raise RuntimeError(f"table {self.source.table} has no stream")
            self._stream_arn = arn
            initial = True
        known = self._iterators.keys() | self._pending.keys() | self._finished
        shards = [shard for shard in self._describe_shards() if shard["ShardId"] not in known]
        latest = initial and self.source.starting_position == "LATEST"
        for shard in shards:
            shard_id = shard["ShardId"]
            closed = "EndingSequenceNumber" in shard.get("SequenceNumberRange", {})
            if latest and closed:
                self._finished.add(shard_id)
            elif latest:
                self._iterators[shard_id] = self._iterator(shard_id, "LATEST")
            else:
                self._pending[shard_id] = shard.get("ParentShardId")
        all_ids = {shard["ShardId"] for shard in shards} | known
        for shard_id, parent in list(self._pending.items()):
            if parent is None or parent in self._finished or parent not in all_ids:
                del self._pending[shard_id]
                self._iterators[shard_id] = self._iterator(shard_id, "TRIM_HORIZON")

    def poll_once(self) -> int:
        """One round over every shard; returns how many records reached the function."""
        self._position(initial=False)
        delivered = 0
        for shard_id in list(self._iterators):
            for _ in range(MAX_READS_PER_SHARD):
                records = self._read(shard_id)
                if records:
                    delivered += self._deliver(records)
                if not records or shard_id not in self._iterators:
                    break
        self.delivered += delivered
        return delivered

    def _read(self, shard_id: str) -> list[dict[str, Any]]:
        """The next records of a shard; a shard closed and read to its end is finished."""
        try:
            response = self._streams.get_records(
                ShardIterator=self._iterators[shard_id], Limit=min(self.source.batch_size, 1000)
            )
        except Exception as error:
            code = error_code(error)
            if code == "ExpiredIteratorException":  # e.g. after the laptop slept
                last = self._last_sequence.get(shard_id)
                if last is None:
                    print(
                        f"stream poller: iterator of {shard_id} expired before any record; "
                        "resuming at the stream's tip, records written meanwhile are skipped",
                        file=sys.stderr,
                    )
                self._iterators[shard_id] = (
                    self._iterator(shard_id, "AFTER_SEQUENCE_NUMBER", last)
                    if last
                    else self._iterator(shard_id, "LATEST")
                )
                return []
            if code == "TrimmedDataAccessException":
                self._iterators[shard_id] = self._iterator(shard_id, "TRIM_HORIZON")
                return []
            raise
        records: list[dict[str, Any]] = response.get("Records", [])
        if records:
            self._last_sequence[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
        following = response.get("NextShardIterator")
        if following:
            self._iterators[shard_id] = following
        else:
            del self._iterators[shard_id]
            self._finished.add(shard_id)
        return records

    # ---- delivery ----------------------------------------------------------------------

    def _deliver(self, raw_records: Sequence[Mapping[str, Any]]) -> int:
        shaped = [
            lambda_record(record, stream_arn=self._stream_arn, region=self._region)
            for record in raw_records
        ]
        batch = [record for record in shaped if passes_filters(self.source.filter_patterns, record)]
        if not batch:
            return 0
        remaining = batch
        attempts = 0
        while attempts < self._attempts:
            if attempts and self._stop.wait(RETRY_PAUSE_S * attempts):
                break  # shutting down: report what is left instead of retrying
            attempts += 1
            remaining = self._invoke_once(remaining)
            if not remaining:
                return len(batch)
        self.failed.extend(remaining)
        print(
            f"{self.source.function}: gave up on {len(remaining)} stream record(s) after "
            f"{attempts} attempt(s) (Lambda would send the batch to its OnFailure "
            "destination):",
            file=sys.stderr,
        )
        for record in remaining:
            print("  " + json.dumps(record, sort_keys=True), file=sys.stderr)
        return len(batch)

    def _invoke_once(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Records still to deliver after one invocation: none, all (the function raised),
        or, for reported batch item failures, every record from the first failed one on."""
        try:
            response = self._invoke(stream_event(records))
        except Exception:
            traceback.print_exc()
            return records
        if not self.source.report_batch_item_failures or not isinstance(response, Mapping):
            return []
        failures = response.get("batchItemFailures") or []
        failed = {failure.get("itemIdentifier") for failure in failures}
        for index, record in enumerate(records):
            if record["dynamodb"].get("SequenceNumber") in failed:
                print(
                    f"{self.source.function}: {len(failures)} batch item failure(s); "
                    f"retrying from record {index + 1} of {len(records)}",
                    file=sys.stderr,
                )
                return records[index:]
        return [] if not failures else records  # an unknown identifier fails the batch
