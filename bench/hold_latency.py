"""Section 3, hold latency: `hold`, `settle`, `renew` and `release` through the debit handler
in-process, one thread, each against the DynamoDB requests it sends, replayed bare.

Each op's requests are captured once from a real invocation (the handler's client wrapped
on its instance): hold = TransactWriteItems (account, new hold) + GetItem of the hold;
settle, renew and release = GetItem of the hold + TransactWriteItems (account, entry, the
hold closed, the next hold placed: whatever the op writes). The floor replays exactly that
sequence from one bare client with fresh ids of the same length: the hold ids, the entry's
transaction id derived from them, and the active-holds shard derived from the hold id.

One iteration, handler and floor interleaved op by op so load drift hits both alike:
hold A | bare hold A'; settle A | bare settle A'; hold B, bare hold B' (untimed: the
renew's input); renew B -> C | bare renew B' -> C'; release C | bare release C'. The
payloads are the agent's (token_meter.protocol): a 15-token hold, 12.5 minutes settled,
15 minutes renewed into the next 15-token hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bench.harness import (
    FakeLambdaContext,
    Harness,
    Request,
    agent_on_path,
    capture_requests,
    rewrite_strings,
)
from bench.report import Row, SectionResult
from bench.stats import Series, fmt_ratio, paired_overhead_ms, ratio

SECTION = "3 hold latency"
OPS = ("hold", "settle", "renew", "release")
HOLD_MINUTES = 15  # vm_runtime is 1 token a minute: a 15-token hold
SETTLE_MINUTES = Decimal("12.5")  # less than the hold: the rest is released
RENEW_MINUTES = Decimal(HOLD_MINUTES)  # the whole hold used, the next one placed
VM_ID = "vm-42"
ENTRY_SCOPES = ("settle", "renew")  # ops whose entry id derives from the hold id


def hold_id(harness: Harness, role: str, slot: str, index: int) -> str:
    """Every id of this section has the same length: a replay's items are the same size."""
    return f"{harness.run_id}-{role}{slot}-{index:06d}"


class Payloads:
    """The agent's payloads for one customer (token_meter.protocol builds them)."""

    def __init__(self, customer_id: str) -> None:
        agent_on_path()
        from token_meter import protocol

        self.protocol = protocol
        self.customer_id = customer_id

    def hold(self, hold_id: str) -> dict[str, Any]:
        return self.protocol.hold_payload(self.customer_id, hold_id, HOLD_MINUTES, VM_ID)

    def settle(self, hold_id: str, minutes: Decimal = SETTLE_MINUTES) -> dict[str, Any]:
        usage = self.protocol.vm_runtime_usage(minutes, VM_ID)
        return self.protocol.settle_payload(self.customer_id, hold_id, usage)

    def renew(
        self, hold_id: str, next_hold_id: str, minutes: Decimal = RENEW_MINUTES
    ) -> dict[str, Any]:
        usage = self.protocol.vm_runtime_usage(minutes, VM_ID)
        return self.protocol.renew_payload(
            self.customer_id, hold_id, next_hold_id, HOLD_MINUTES, usage, VM_ID
        )

    def release(self, hold_id: str) -> dict[str, Any]:
        return self.protocol.release_payload(self.customer_id, hold_id)


def invoke(harness: Harness, payload: dict[str, Any], context: Any) -> dict[str, Any]:
    reply = harness.handler(payload, context)
    assert reply.get("ok"), reply
    if payload["op"] == "renew":
        assert reply.get("renewed"), reply
    return reply


def id_replacements(customer_id: str, pairs: dict[str, str]) -> dict[str, str]:
    """Captured id -> fresh id, for the hold ids and the entry ids derived from them."""
    from token_billing.store.table_layout import transaction_id

    replacements = dict(pairs)
    for old, new in pairs.items():
        for scope in ENTRY_SCOPES:
            replacements[transaction_id(customer_id, scope, old)] = transaction_id(
                customer_id, scope, new
            )
    return replacements


def fresh_requests(
    captured: list[Request], customer_id: str, pairs: dict[str, str]
) -> list[Request]:
    """The captured sequence with fresh ids; a new hold item gets its own shard."""
    from token_billing.store.table_layout import active_hold_shard

    replacements = id_replacements(customer_id, pairs)
    fresh: list[Request] = []
    for method, kwargs in captured:
        rewritten = rewrite_strings(kwargs, replacements)
        for action in rewritten.get("TransactItems", []):
            item = action.get("Put", {}).get("Item", {})
            if "active_shard" in item:
                item["active_shard"] = {"S": active_hold_shard(item["hold_id"]["S"])}
        fresh.append((method, rewritten))
    return fresh


def describe(requests: list[Request]) -> str:
    names = {
        "get_item": "GetItem",
        "transact_write_items": "TransactWriteItems",
        "update_item": "UpdateItem",
        "put_item": "PutItem",
        "query": "Query",
    }
    parts = []
    for method, kwargs in requests:
        items = kwargs.get("TransactItems")
        if items is None:
            parts.append(names[method])
            continue
        kinds = ", ".join(next(iter(action)) for action in items)
        parts.append(f"{names[method]} ({kinds})")
    return " + ".join(parts)


def run(
    harness: Harness, *, warmup: int, count: int, progress: Callable[[str], None]
) -> SectionResult:
    result = SectionResult()
    customer_id = harness.customer("holds")
    harness.fund(customer_id, 10**12)
    payloads = Payloads(customer_id)
    context = FakeLambdaContext()
    client = harness.bare_client

    # The capture iteration: every op once, its requests recorded.
    cap = {slot: hold_id(harness, "k", slot, 0) for slot in "abc"}
    steps: dict[str, Callable[[], Any]] = {
        "hold": lambda: invoke(harness, payloads.hold(cap["a"]), context),
        "settle": lambda: invoke(harness, payloads.settle(cap["a"]), context),
        "hold B": lambda: invoke(harness, payloads.hold(cap["b"]), context),
        "renew": lambda: invoke(harness, payloads.renew(cap["b"], cap["c"]), context),
        "release": lambda: invoke(harness, payloads.release(cap["c"]), context),
    }
    captured: dict[str, list[Request]] = {}
    for name, step in steps.items():
        _, captured[name] = capture_requests(harness, step)

    handler = {op: Series() for op in OPS}
    bare = {op: Series() for op in OPS}
    total = warmup + count
    for index in range(total):
        record = index >= warmup
        mine = {slot: hold_id(harness, "h", slot, index) for slot in "abc"}
        floor_ids = {slot: hold_id(harness, "f", slot, index) for slot in "abc"}
        pairs = {cap[slot]: floor_ids[slot] for slot in "abc"}
        replays = {
            name: [
                (getattr(client, method), kwargs)
                for method, kwargs in fresh_requests(requests, customer_id, pairs)
            ]
            for name, requests in captured.items()
        }
        calls: list[tuple[str, dict[str, Any]]] = [
            ("hold", payloads.hold(mine["a"])),
            ("settle", payloads.settle(mine["a"])),
            ("hold B", payloads.hold(mine["b"])),
            ("renew", payloads.renew(mine["b"], mine["c"])),
            ("release", payloads.release(mine["c"])),
        ]
        for name, payload in calls:
            start = time.perf_counter_ns()
            invoke(harness, payload, context)
            handler_ns = time.perf_counter_ns() - start
            start = time.perf_counter_ns()
            for method, kwargs in replays[name]:
                method(**kwargs)
            bare_ns = time.perf_counter_ns() - start
            if record and name in handler:
                handler[name].ns.append(handler_ns)
                bare[name].ns.append(bare_ns)
        if (index + 1) % 100 == 0:
            progress(f"hold latency: {index + 1}/{total} iterations")

    account = harness.check_ledger.get_account(customer_id)
    consistent = (
        account is not None and account.held_mt == 0 and harness.invariant_holds(customer_id)
    )
    for op in OPS:
        mine_s, floor_s = handler[op], bare[op]
        p50 = ratio(mine_s.p50_ms, floor_s.p50_ms)
        result.rows.append(
            Row(
                SECTION,
                f"{op}: p50 / p99 latency",
                f"{mine_s.p50_ms:.2f} / {mine_s.p99_ms:.2f} ms",
                f"same {describe(captured[op])}, bare: "
                f"{floor_s.p50_ms:.2f} / {floor_s.p99_ms:.2f} ms",
                f"{fmt_ratio(p50, 3)} / {fmt_ratio(ratio(mine_s.p99_ms, floor_s.p99_ms))}",
                "(report)",
            )
        )
    overheads = ", ".join(f"{op} {paired_overhead_ms(handler[op], bare[op]):.2f} ms" for op in OPS)
    result.rows.append(
        Row(
            SECTION,
            "after every hold is settled, renewed or released",
            f"held = {account.held_mt if account else 'n/a'} mt; balance = sum(entries): "
            + ("yes" if consistent else "NO"),
            "",
            "",
            "held = 0, balance = sum(entries)",
            "PASS" if consistent else "FAIL",
        )
    )
    if not consistent:
        result.failed.append("hold latency: held != 0 or balance != sum(entries)")
    result.notes.append(
        f"Hold latency: {count} iterations after {warmup} warm-ups, each op followed by its "
        "floor (the same requests replayed bare with fresh ids of the same length); the "
        f"handler spends, beyond its requests (median of paired differences): {overheads}."
    )
    if captured["hold"] and captured["hold"][-1][0] == "get_item":
        result.notes.append(
            "Hold latency: `hold` reads the hold back after its transaction commits, a "
            "second round trip although the transaction wrote every attribute the reply "
            "returns; settle, renew and release read the hold first, since their "
            "transaction's condition needs its current amount."
        )
    progress("hold latency: done")
    return result
