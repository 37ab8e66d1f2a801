"""The ledger-stream function on DynamoDB Local's real stream: daily usage aggregates and
TokenBalanceLow events, exactly once under redelivery.

Records are read from the table's stream (the session shares one table, so filtered by the
test's customer), shaped and filtered exactly as the dev server's poller does, and handed
to the handler, once or twice. EventBridge is the dev server's PutEvents endpoint over real
HTTP (boto3 reaches it through AWS_ENDPOINT_URL_EVENTBRIDGE), which records what it gets.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import ledger_stream_handler
import pytest
from debit_handler import lambda_handler as debit_handler

from local import dynamodb_local
from local.ddb_streams import lambda_record, local_client_arguments, passes_filters
from local.devserver import DevServer
from local.template import load_template
from tests.conftest import fake_context
from tests.integration.helpers import dev_server_client, fund
from token_billing.integrations import eventbridge as eventbridge_module
from token_billing.store.codecs import usage_by_action
from token_billing.store.ledger import Ledger
from token_billing.store.table_layout import customer_pk
from token_billing.store.usage_aggregates import UsageAggregates, usage_sk

pytestmark = pytest.mark.integration

TABLE = "LedgerTable"
BUS = "TokenBillingEventBus"
(SOURCE,) = [s for s in load_template().stream_sources() if s.function == "LedgerStreamFunction"]
MAX_STREAM_READS = 500
WAIT_S = 15.0


@pytest.fixture(scope="module")
def server(dev_server: DevServer) -> DevServer:
    dev_server.fake_events.log_path = None  # tests read the entries in memory
    dev_server.fake_events.echo = False
    return dev_server


@pytest.fixture(autouse=True)
def eventbridge(server: DevServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The handler's unchanged events client, pointed at the dev server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", server.url)
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    eventbridge_module.events_client.cache_clear()
    yield
    eventbridge_module.events_client.cache_clear()


@pytest.fixture
def aggregates(ddb_local: dynamodb_local.DynamoDBLocal) -> UsageAggregates:
    return UsageAggregates(ddb_local.client(), TABLE)


# ---- helpers -----------------------------------------------------------------------------


def stream_records(
    ddb: dynamodb_local.DynamoDBLocal, customer_id: str, *, account_only: bool = True
) -> list[dict[str, Any]]:
    """Every record of the customer's ACCOUNT item in the table's stream, oldest first, as
    Lambda's event carries them and after the template's FilterCriteria; with
    `account_only=False` also the usage entries and VM limit marks the filter passes
    (tests/integration/test_vm_usage.py)."""
    streams: Any = boto3.client("dynamodbstreams", **local_client_arguments(ddb.endpoint))
    arn = ddb.client().describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    found: list[dict[str, Any]] = []
    for shard in shards:  # DynamoDB Local keeps one shard; parents come first anyway
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for _ in range(MAX_STREAM_READS):
            response = streams.get_records(ShardIterator=iterator, Limit=1000)
            for record in response["Records"]:
                if record["dynamodb"]["Keys"]["PK"]["S"] == customer_pk(customer_id):
                    found.append(lambda_record(record, stream_arn=arn, region="us-east-1"))
            iterator = response.get("NextShardIterator")
            if not response["Records"] or not iterator:
                break
        else:
            raise AssertionError("the stream did not drain")
    return [
        record
        for record in found
        if passes_filters(SOURCE.filter_patterns, record)
        and (not account_only or record["dynamodb"]["Keys"]["SK"]["S"] == "ACCOUNT")
    ]


def deliver(records: Sequence[dict[str, Any]], batch_size: int = SOURCE.batch_size) -> None:
    """Hand records to the handler in batches, as the event source mapping does."""
    for start in range(0, len(records), batch_size):
        batch = list(records[start : start + batch_size])
        reply = ledger_stream_handler.lambda_handler({"Records": batch}, fake_context())
        assert reply == {"batchItemFailures": []}


def debit(customer_id: str, key: str, usage: list[dict[str, Any]]) -> dict[str, Any]:
    payload = {"customer_id": customer_id, "idempotency_key": key, "usage": usage}
    reply: dict[str, Any] = debit_handler(payload, fake_context())
    assert reply["ok"] is True, reply
    return reply


def ledger_usage(ledger: Ledger, customer_id: str) -> dict[str, int]:
    """Usage per action from the ledger entries themselves, not from the account counters."""
    totals: dict[str, int] = {}
    for entry in ledger.iter_entries(customer_id):
        for action, value in entry.get("usage_mt_by_action", {}).get("M", {}).items():
            totals[action] = totals.get(action, 0) + int(value["N"])
    return totals


def around_today() -> tuple[date, date]:
    today = datetime.now(UTC).date()
    return today - timedelta(days=1), today + timedelta(days=1)


def low_balance_events(server: DevServer, customer_id: str) -> list[dict[str, Any]]:
    """Details of the TokenBalanceLow events the dev server received for this customer."""
    found = []
    for entry in server.fake_events.snapshot():
        detail = json.loads(entry["Detail"])
        if detail.get("customer_id") == customer_id:
            assert entry["Source"] == "token-billing"
            assert entry["DetailType"] == "TokenBalanceLow"
            assert entry["EventBusName"] == BUS
            found.append(detail)
    return found


def account_image(record: dict[str, Any]) -> dict[str, Any]:
    image: dict[str, Any] = record["dynamodb"]["NewImage"]
    return image


def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_s} s")
        time.sleep(0.1)


SEEDED_HISTORY: list[list[dict[str, Any]]] = [
    [{"action": "vm_runtime", "quantity": 5}, {"action": "api_call", "quantity": 17}],
    [{"action": "screenshot", "quantity": 3}],
    [{"action": "ai_message", "quantity": "2.5"}, {"action": "api_call", "quantity": 1}],
    [{"action": "file_upload", "quantity": "0.333"}],
    [{"action": "vm_runtime", "quantity": 61}, {"action": "screenshot", "quantity": 1}],
    [{"action": "api_call", "quantity": 0.7}, {"action": "ai_message", "quantity": 9}],
    [{"action": "vm_runtime", "quantity": 1}],
]


# ---- usage aggregates --------------------------------------------------------------------


def test_aggregates_equal_the_ledger_per_action_even_when_every_record_comes_twice(
    ddb_local: dynamodb_local.DynamoDBLocal,
    ledger: Ledger,
    aggregates: UsageAggregates,
    customer_id: str,
) -> None:
    fund(ledger, customer_id, 10_000_000)
    for index, usage in enumerate(SEEDED_HISTORY):
        debit(customer_id, f"batch-{index}", usage)
    debit(customer_id, "batch-0", SEEDED_HISTORY[0])  # a replay: moves nothing, no record
    records = stream_records(ddb_local, customer_id)
    expected = ledger_usage(ledger, customer_id)
    assert len(expected) == 5
    assert len(records) == 1 + len(SEEDED_HISTORY)  # the grant's INSERT and one per debit

    deliver(records, batch_size=3)
    first_day, last_day = around_today()
    assert aggregates.usage_for_days(customer_id, first_day, last_day) == expected

    # Every record again: a retried batch, then duplicates side by side in one batch.
    deliver(records)
    deliver([record for record in records for _ in range(2)])
    assert aggregates.usage_for_days(customer_id, first_day, last_day) == expected
    account = ddb_local.client().get_item(
        TableName=TABLE, Key={"PK": {"S": customer_pk(customer_id)}, "SK": {"S": "ACCOUNT"}}
    )["Item"]
    assert usage_by_action(account) == expected  # type: ignore[arg-type]


def test_aggregate_item_is_keyed_by_the_utc_day_and_remembers_the_last_version(
    ddb_local: dynamodb_local.DynamoDBLocal, ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 100_000)
    debit(customer_id, "one", [{"action": "api_call", "quantity": 3}])
    records = stream_records(ddb_local, customer_id)
    deliver(records)

    image = account_image(records[-1])
    day = datetime.fromisoformat(image["updated_at"]["S"]).astimezone(UTC).date()
    item = ddb_local.client().get_item(
        TableName=TABLE,
        Key={"PK": {"S": customer_pk(customer_id)}, "SK": {"S": usage_sk(day)}},
        ConsistentRead=True,
    )["Item"]
    assert item["last_version"] == image["version"]
    assert item["day"] == {"S": day.isoformat()}
    assert item["customer_id"] == {"S": customer_id}
    assert usage_by_action(item) == {"api_call": 300}  # type: ignore[arg-type]


def test_a_failed_record_fails_the_rest_of_its_batch_and_the_retry_counts_each_once(
    server: DevServer,
    ddb_local: dynamodb_local.DynamoDBLocal,
    ledger: Ledger,
    aggregates: UsageAggregates,
    customer_id: str,
) -> None:
    fund(ledger, customer_id, 501_000)
    debit(customer_id, "a", [{"action": "api_call", "quantity": 1}])  # 500.9 left
    debit(customer_id, "b", [{"action": "vm_runtime", "quantity": 1}])  # 499.9: crosses
    debit(customer_id, "c", [{"action": "screenshot", "quantity": 1}])  # applied after b
    records = stream_records(ddb_local, customer_id)
    sequence = [record["dynamodb"]["SequenceNumber"] for record in records]
    server.fake_events.refuse_next(1)  # PutEvents answers FailedEntryCount 1 for b

    reply = ledger_stream_handler.lambda_handler({"Records": records}, fake_context())

    # b failed on its event after its usage applied; c was not touched, so that b's retry
    # is not mistaken for a redelivery of an older version.
    assert reply == {"batchItemFailures": [{"itemIdentifier": seq} for seq in sequence[2:]]}
    first_day, last_day = around_today()
    assert aggregates.usage_for_days(customer_id, first_day, last_day) == {
        "api_call": 100,
        "vm_runtime": 1_000,
    }
    assert low_balance_events(server, customer_id) == []

    deliver(records[2:])  # Lambda retries from the first failed sequence number

    assert aggregates.usage_for_days(customer_id, first_day, last_day) == ledger_usage(
        ledger, customer_id
    )
    assert len(low_balance_events(server, customer_id)) == 1


# ---- TokenBalanceLow ---------------------------------------------------------------------


def test_low_balance_event_fires_once_per_crossing_with_a_stable_id(
    server: DevServer, ddb_local: dynamodb_local.DynamoDBLocal, ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 502_000)
    debit(customer_id, "k1", [{"action": "vm_runtime", "quantity": 1}])  # 501: above
    debit(customer_id, "k2", [{"action": "vm_runtime", "quantity": 1}])  # 500: not below
    debit(customer_id, "k3", [{"action": "api_call", "quantity": 1}])  # 499.9: crosses
    debit(customer_id, "k4", [{"action": "vm_runtime", "quantity": 100}])  # 399.9: below
    records = stream_records(ddb_local, customer_id)

    deliver(records)
    deliver(records)  # the whole stream delivered a second time
    deliver([records[3], records[3]])  # and the crossing itself twice in one batch

    crossing = account_image(records[3])
    assert crossing["balance_mt"] == {"N": "499900"}
    version = int(crossing["version"]["N"])
    assert low_balance_events(server, customer_id) == [
        {
            "id": f"{customer_id}:{version}",
            "customer_id": customer_id,
            "balance": "499.9",
            "balance_mt": 499_900,
            "available": "499.9",
            "available_mt": 499_900,
            "threshold": "500",
            "threshold_mt": 500_000,
            "version": version,
            "crossed_at": crossing["updated_at"]["S"],
        }
    ]
    marker = ddb_local.client().get_item(
        TableName=TABLE,
        Key={
            "PK": {"S": customer_pk(customer_id)},
            "SK": {"S": f"LOWBALANCE#{version:012d}"},
        },
        ConsistentRead=True,
    )
    assert marker["Item"]["event_id"] == {"S": f"{customer_id}:{version}"}


def test_twenty_concurrent_debits_crossing_the_line_together_fire_it_once(
    server: DevServer, ddb_local: dynamodb_local.DynamoDBLocal, ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 510_000)  # the 11th debit of 1 token crosses
    start = threading.Barrier(20, timeout=10)
    replies: list[dict[str, Any]] = []

    def agent(index: int) -> None:
        start.wait()
        payload = {
            "customer_id": customer_id,
            "idempotency_key": f"vm-{index}",
            "usage": [{"action": "vm_runtime", "quantity": 1}],
        }
        for _ in range(5):  # an agent retries a retryable refusal with the same key
            reply = debit_handler(payload, fake_context())
            if reply["ok"] or not reply["error"]["retryable"]:
                break
        assert reply["ok"] is True, reply
        replies.append(reply)

    threads = [threading.Thread(target=agent, args=(index,)) for index in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(replies) == 20
    records = stream_records(ddb_local, customer_id)
    assert len(records) == 21

    deliver(records, batch_size=7)
    deliver(records)  # redelivered

    (event,) = low_balance_events(server, customer_id)
    assert event["balance_mt"] == 499_000
    assert event["id"] == f"{customer_id}:{event['version']}"
    assert ledger.get_account(customer_id).balance_mt == 490_000  # type: ignore[union-attr]


def test_a_top_up_and_a_second_crossing_fire_it_again(
    server: DevServer, ddb_local: dynamodb_local.DynamoDBLocal, ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 501_000)
    debit(customer_id, "first", [{"action": "vm_runtime", "quantity": 2}])  # 499: crosses
    fund(ledger, customer_id, 100_000, key="top-up")  # 599: above again
    debit(customer_id, "second", [{"action": "vm_runtime", "quantity": 100}])  # 499: crosses
    records = stream_records(ddb_local, customer_id)

    deliver(records)
    deliver(records)

    events = low_balance_events(server, customer_id)
    assert [event["balance_mt"] for event in events] == [499_000, 499_000]
    versions = [int(account_image(record)["version"]["N"]) for record in records]
    assert [event["id"] for event in events] == [
        f"{customer_id}:{versions[1]}",
        f"{customer_id}:{versions[3]}",
    ]


# ---- the dev server: its stream poller and its EventBridge -------------------------------


def test_dev_server_poller_delivers_the_stream_to_the_function(
    server: DevServer,
    ddb_local: dynamodb_local.DynamoDBLocal,
    ledger: Ledger,
    aggregates: UsageAggregates,
    customer_id: str,
) -> None:
    fund(ledger, customer_id, 500_500)
    pollers = server.start_stream_pollers(ddb_local.endpoint)
    (poller,) = [p for p in pollers if p.source.function == "LedgerStreamFunction"]
    try:
        debit(customer_id, "p1", [{"action": "api_call", "quantity": 2}])  # 500.3
        debit(customer_id, "p2", [{"action": "screenshot", "quantity": 1}])  # 499.8: crosses
        first_day, last_day = around_today()
        expected = ledger_usage(ledger, customer_id)

        wait_until(lambda: aggregates.usage_for_days(customer_id, first_day, last_day) == expected)
        wait_until(lambda: len(low_balance_events(server, customer_id)) == 1)
        assert poller.failed == []
    finally:
        server.stop_stream_pollers()
    assert server.stream_pollers == []
    assert not any(thread.name.startswith("stream-") for thread in threading.enumerate())


def events_client(server: DevServer) -> Any:
    return dev_server_client("events", server, read_timeout_s=10)


def test_dev_server_answers_put_events_and_logs_each_entry(
    server: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "events.jsonl"
    monkeypatch.setattr(server.fake_events, "log_path", log)
    good = {"Source": "tests", "DetailType": "Ping", "Detail": '{"n":1}', "EventBusName": BUS}
    bad = {"Source": "tests", "DetailType": "Ping", "Detail": "{not json"}

    reply = events_client(server).put_events(Entries=[good, bad])

    assert reply["FailedEntryCount"] == 1
    assert "EventId" in reply["Entries"][0]
    assert reply["Entries"][1]["ErrorCode"] == "MalformedDetail"
    assert [json.loads(line) for line in log.read_text().splitlines()] == [good]
    assert server.fake_events.snapshot()[-1] == good


def test_dev_server_refuses_more_than_ten_entries(server: DevServer) -> None:
    client = events_client(server)
    entry = {"Source": "tests", "DetailType": "Ping", "Detail": "{}"}
    with pytest.raises(client.exceptions.ClientError, match="ValidationException"):
        client.put_events(Entries=[entry] * 11)
