"""Section 2, debit overhead: the debit handler invoked in-process, one thread, against the
DynamoDB requests it cannot do without, sent bare from one boto3 client to the same table.

Floors, interleaved call by call with the handler so load drift hits all three alike:
(a) exactly the TransactWriteItems the debit sends, captured from a real invocation and
    replayed with a fresh entry key of the same length (same items, sizes, conditions);
(b) one conditional UpdateItem (`ADD balance_mt :neg` if `available_mt >= :x`), the least
    any atomic debit could cost (it records no entry and no idempotency: README, "why").
The 1,000-line batch is measured the same way against (a) with its own 1,000-line entry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bench.harness import (
    THREE_LINES,
    FakeLambdaContext,
    Harness,
    capture_transaction,
    replay_with_fresh_keys,
    thousand_lines,
)
from bench.report import Row, SectionResult
from bench.stats import Series, fmt_ratio, paired_overhead_ms, ratio

SECTION = "2 debit overhead"
TARGET_P50 = 1.2


def _timed(
    series: Series, record: bool, call: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    start = time.perf_counter_ns()
    result = call(*args, **kwargs)
    elapsed = time.perf_counter_ns() - start
    if record:
        series.ns.append(elapsed)
    return result


def _measure(
    harness: Harness,
    *,
    customer_id: str,
    usage: list[dict[str, Any]],
    label: str,
    warmup: int,
    count: int,
    with_update_floor: bool,
) -> tuple[Series, Series, Series | None]:
    cost_mt = harness.price_mt(usage)
    total = warmup + count
    harness.fund(customer_id, cost_mt * (2 * total + 2))
    captured = capture_transaction(
        harness, harness.debit_payload(customer_id, f"{label}-capture", usage)
    )
    payloads = [harness.debit_payload(customer_id, f"{label}-{i}", usage) for i in range(total)]
    floors = [
        replay_with_fresh_keys(captured, customer_id, f"{label}-floor-{i}") for i in range(total)
    ]
    floor_customer = harness.customer(f"{label}-upd")
    update: dict[str, Any] = {
        "TableName": harness.table,
        "Key": {"PK": {"S": f"CUST#{floor_customer}"}, "SK": {"S": "ACCOUNT"}},
        "UpdateExpression": "ADD balance_mt :neg",
        "ConditionExpression": "available_mt >= :x",
        "ExpressionAttributeValues": {":neg": {"N": str(-cost_mt)}, ":x": {"N": str(cost_mt)}},
    }
    if with_update_floor:
        harness.fund(floor_customer, cost_mt)  # available_mt never moves: the check holds
    handler, bare, single = Series(), Series(), Series()
    context = FakeLambdaContext()
    client = harness.bare_client
    for index in range(total):
        record = index >= warmup
        reply = _timed(handler, record, harness.handler, payloads[index], context)
        assert reply.get("ok"), reply
        _timed(bare, record, client.transact_write_items, **floors[index])
        if with_update_floor:
            _timed(single, record, client.update_item, **update)
    return handler, bare, single if with_update_floor else None


def _rows(
    measure: str, handler: Series, floor: Series, floor_name: str, unit: str, per: int
) -> list[Row]:
    p50 = ratio(handler.p50_ms, floor.p50_ms)
    return [
        Row(
            SECTION,
            f"{measure}: p50 latency",
            f"{handler.p50_ms:.2f} ms",
            f"{floor_name}: {floor.p50_ms:.2f} ms",
            fmt_ratio(p50, 3),
        ),
        Row(
            SECTION,
            f"{measure}: p99 latency",
            f"{handler.p99_ms:.2f} ms",
            f"{floor_name}: {floor.p99_ms:.2f} ms",
            fmt_ratio(ratio(handler.p99_ms, floor.p99_ms)),
        ),
        Row(
            SECTION,
            f"{measure}: {unit}/s, one thread",
            f"{handler.per_s * per:,.0f}/s",
            f"{floor_name}: {floor.per_s * per:,.0f}/s",
            fmt_ratio(ratio(handler.per_s, floor.per_s)),
        ),
    ]


def run(
    harness: Harness,
    *,
    warmup: int,
    count: int,
    big_warmup: int,
    big_count: int,
    progress: Callable[[str], None],
) -> tuple[SectionResult, float]:
    """The section's rows, and the handler's debits/s (contention sizes its runs with it)."""
    result = SectionResult()
    handler, bare, single = _measure(
        harness,
        customer_id=harness.customer("d3"),
        usage=THREE_LINES,
        label="d3",
        warmup=warmup,
        count=count,
        with_update_floor=True,
    )
    assert single is not None
    progress(f"debit overhead: {count} three-line debits done")
    rows = _rows("3-line debit", handler, bare, "same TransactWriteItems, bare", "debits", 1)
    p50 = ratio(handler.p50_ms, bare.p50_ms)
    rows[0] = replace(
        rows[0], target=f"<= {TARGET_P50}x", result="PASS" if p50 <= TARGET_P50 else "OVER"
    )
    result.rows += rows
    result.rows.append(
        Row(
            SECTION,
            "3-line debit vs the least atomic debit: p50 latency",
            f"{handler.p50_ms:.2f} ms",
            f"one conditional UpdateItem: {single.p50_ms:.2f} ms",
            fmt_ratio(ratio(handler.p50_ms, single.p50_ms)),
            "(report)",
        )
    )
    result.notes.append(
        f"Debit overhead: {count} sequential debits after {warmup} warm-ups, each followed by "
        "one of each floor; the handler spends "
        f"{paired_overhead_ms(handler, bare):.2f} ms (median of paired differences) beyond its "
        "TransactWriteItems (parsing, pricing, zlib of the lines, Powertools' logger and EMF "
        "metrics)."
    )

    big, big_bare, _ = _measure(
        harness,
        customer_id=harness.customer("dk"),
        usage=thousand_lines(),
        label="dk",
        warmup=big_warmup,
        count=big_count,
        with_update_floor=False,
    )
    progress(f"debit overhead: {big_count} thousand-line debits done")
    result.rows += _rows(
        "1,000-line debit", big, big_bare, "same TransactWriteItems, bare", "lines", 1_000
    )
    result.notes.append(
        f"1,000-line debit: {big_count} debits after {big_warmup} warm-up(s); the handler "
        f"spends {paired_overhead_ms(big, big_bare):.1f} ms (median of paired differences) "
        f"beyond its request, {paired_overhead_ms(big, big_bare):.0f} us per line."
    )
    return result, handler.per_s
