"""A ledger export of any size, generated straight into DynamoDB's export format (writing
millions of items through DynamoDB Local would take hours): for `make reconcile-scale`, and
for the tests, which also write the same items into DynamoDB Local.

Every customer gets a consistent history in the ledger's own item shapes: paid orders and
their purchase credits (with the PAYMENT item the webhook writes), a grant now and then,
usage entries with their compressed lines and per-action amounts, the day's usage
aggregates, an active or settled hold, the occasional refund clawback, and the ACCOUNT item
those entries add up to. Every `anomaly_every`-th customer carries one planted difference
(`ANOMALIES`), listed in `planted.json` beside the export so a run can check it found
exactly those.

    .venv/bin/python -m tools.generate_export --out .local/scale --customers 1000000 \\
        --entries-per-customer 10
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from token_billing.domain.catalog import PACKAGES, RATES
from token_billing.store.codecs import encode_lines, request_hash, usage_counter
from token_billing.store.table_layout import transaction_id
from tools.table_export import data_folder, finish_export, new_export_id, write_data_file

ANOMALIES = ("balance", "uncredited_order", "orphan_credit")
# the check each planted anomaly must fail (check_accounts.sql, check_orders.sql)
ANOMALY_CHECK = {
    "balance": "balance = sum of entries",
    "uncredited_order": "paid order credited once",
    "orphan_credit": "credit has a paid order",
}
CUSTOMERS_PER_FILE = 20_000
# Histories start within the first START_DAYS days and, at up to 3 days between writes,
# end before FIRST_DAY + DAYS, the generated export's time: every write is settled.
FIRST_DAY = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 330
START_DAYS = 240

Item = dict[str, Any]


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class History:
    """One customer's items being built, and the account figures they add up to."""

    customer_id: str
    items: list[Item]
    clock: datetime
    version: int = 0
    balance_mt: int = 0
    held_mt: int = 0
    last_change: tuple[str, int, int] = ("", 0, 0)

    @property
    def pk(self) -> dict[str, str]:
        return s(f"CUST#{self.customer_id}")

    def tick(self, rng: random.Random) -> str:
        self.clock += timedelta(
            minutes=rng.randint(1, 3 * 24 * 60), microseconds=rng.randint(0, 999_999)
        )
        return stamp(self.clock)

    def entry(self, kind: str, key: str, amount_mt: int, at: str, cause: Item) -> str:
        txn_id = transaction_id(self.customer_id, kind, key)
        self.items.append(
            {
                "PK": self.pk,
                "SK": s(f"TXN#{txn_id}"),
                "entity": s("entry"),
                "txn_id": s(txn_id),
                "customer_id": s(self.customer_id),
                "kind": s(kind),
                "amount_mt": n(amount_mt),
                "idempotency_key": s(key),
                "request_hash": s(request_hash(key)),
                "created_at": s(at),
                "ledger_sk": s(f"{at}#{txn_id}"),
                **cause,
            }
        )
        self.account_moved(txn_id, amount_mt, 0)
        return txn_id

    def account_moved(self, change_id: str, balance_delta_mt: int, held_delta_mt: int) -> None:
        self.version += 1
        self.balance_mt += balance_delta_mt
        self.held_mt += held_delta_mt
        self.last_change = (change_id, balance_delta_mt, held_delta_mt)


def customer_items(
    rng: random.Random, index: int, *, entries: int, anomaly: str | None = None
) -> Iterator[Item]:
    """Every item of one customer's partition (and their PAYMENT items), consistent
    unless `anomaly` names a difference to plant."""
    customer_id = f"cust_{index:08d}"
    history = History(customer_id, [], FIRST_DAY + timedelta(days=rng.randrange(START_DAYS)))
    totals = dict.fromkeys(("purchased_mt", "bonus_mt", "granted_mt", "clawed_back_mt"), 0)
    used_by_action: dict[str, int] = {}
    purchases = 1 + (entries >= 8 and rng.random() < 0.3)
    grants = int(entries - purchases >= 4 and rng.random() < 0.2)
    clawbacks = int(anomaly is None and entries - purchases - grants >= 4 and rng.random() < 0.02)
    orders: list[tuple[str, int, int, int]] = []  # order id, price, tokens, bonus
    for number in range(purchases):
        package = rng.choice(list(PACKAGES.values()))
        order_id = f"ord_{index:08d}{number:04d}"
        created = history.tick(rng)
        paid = history.tick(rng)
        orders.append((order_id, package.price_cents, package.tokens_mt, package.bonus_mt))
        planted_orphan = anomaly == "orphan_credit" and number == 0
        planted_uncredited = anomaly == "uncredited_order" and number == 0
        if not planted_orphan:
            history.items.append(order_item(history, order_id, package, created, paid))
        if not planted_uncredited:
            history.entry(
                "purchase",
                order_id,
                package.tokens_mt + package.bonus_mt,
                paid,
                {
                    "order_id": s(order_id),
                    "package_id": s(package.package_id),
                    "catalog_version": s("2026-11-01"),
                    "bonus_mt": n(package.bonus_mt),
                },
            )
            totals["purchased_mt"] += package.tokens_mt
            totals["bonus_mt"] += package.bonus_mt
            history.items.append(
                {
                    "PK": s(f"PI#pi_{order_id}"),
                    "SK": s("PAYMENT"),
                    "customer_id": s(customer_id),
                    "order_id": s(order_id),
                }
            )
    for number in range(grants):
        amount_mt = rng.choice((100, 500, 1_000)) * 1_000
        history.entry(
            "grant",
            f"grant-{number}",
            amount_mt,
            history.tick(rng),
            {"reason": s("goodwill"), "granted_by": s("support")},
        )
        totals["granted_mt"] += amount_mt
    for _ in range(clawbacks):  # a refund of half the first order
        order_id, price_cents, tokens_mt, bonus_mt = orders[0]
        amount_mt = (tokens_mt + bonus_mt) // 2
        key = f"refund:ch_{order_id}:{price_cents // 2}"
        history.entry(
            "clawback",
            key,
            -amount_mt,
            history.tick(rng),
            {"order_id": s(order_id), "reason": s("refund")},
        )
        totals["clawed_back_mt"] += amount_mt
        mark_refunded(history.items, order_id, price_cents // 2, amount_mt)
    days: dict[str, dict[str, int]] = {}
    # a planted uncredited order lacks its credit: one more usage entry keeps the count
    usages = entries - purchases - grants - clawbacks + (anomaly == "uncredited_order")
    for number in range(usages):
        at = history.tick(rng)
        budget_mt = max(history.balance_mt - history.held_mt, 0) // 4
        lines, by_action = usage_lines(rng, budget_mt)
        if not by_action:
            by_action = {"api_call": 100}
            lines = [["api_call", "1", None, 100]]
        cost_mt = sum(by_action.values())
        history.entry(
            "usage",
            f"vm-{number}",
            -cost_mt,
            at,
            {
                "line_count": n(len(lines)),
                "lines_z": {"B": encode_lines(lines)},
                "usage_mt_by_action": {"M": {a: n(mt) for a, mt in by_action.items()}},
            },
        )
        day = days.setdefault(at[:10], {})
        for action, mt in by_action.items():
            used_by_action[action] = used_by_action.get(action, 0) + mt
            day[action] = day.get(action, 0) + mt
    hold_mt = 10_000
    hold_at = history.tick(rng)
    history.items.append(
        hold_item(history, f"vm-{index}-hold", hold_mt, hold_at, active=index % 3 == 0)
    )
    if index % 3 == 0:
        history.account_moved(f"hold:vm-{index}-hold", 0, hold_mt)
    for usage_day, day_usage in days.items():
        history.items.append(
            {
                "PK": history.pk,
                "SK": s(f"USAGE#{usage_day}"),
                "customer_id": s(customer_id),
                "day": s(usage_day),
                "last_version": n(history.version),
                **{usage_counter(a): n(mt) for a, mt in day_usage.items()},
            }
        )
    yield from history.items
    yield account_item(history, totals, used_by_action, planted=anomaly == "balance")


def usage_lines(rng: random.Random, budget_mt: int) -> tuple[list[list[object]], dict[str, int]]:
    lines: list[list[object]] = []
    by_action: dict[str, int] = {}
    for action in rng.sample(list(RATES), rng.randint(1, 3)):
        quantity = rng.randint(1, 30)
        cost_mt = RATES[action].rate_mt_per_unit * quantity
        if sum(by_action.values()) + cost_mt > budget_mt:
            continue
        lines.append([action, str(quantity), None, cost_mt])
        by_action[action] = by_action.get(action, 0) + cost_mt
    return lines, by_action


def order_item(history: History, order_id: str, package: Any, created: str, paid: str) -> Item:
    return {
        "PK": history.pk,
        "SK": s(f"ORDER#{order_id}"),
        "entity": s("order"),
        "order_id": s(order_id),
        "customer_id": s(history.customer_id),
        "package_id": s(package.package_id),
        "catalog_version": s("2026-11-01"),
        "price_cents": n(package.price_cents),
        "currency": s("usd"),
        "tokens_mt": n(package.tokens_mt),
        "bonus_mt": n(package.bonus_mt),
        "status": s("paid"),
        "created_at": s(created),
        "updated_at": s(paid),
        "paid_at": s(paid),
        "session_id": s(f"cs_test_{order_id}"),
        "payment_intent_id": s(f"pi_{order_id}"),
        "kind": s("purchase"),
        "packs": n(1),
    }


def mark_refunded(items: list[Item], order_id: str, refunded_cents: int, clawed_mt: int) -> None:
    for item in items:
        if item["SK"]["S"] == f"ORDER#{order_id}":
            item["status"] = s("partially_refunded")
            item["refunded_cents"] = n(refunded_cents)
            item["clawed_back_mt"] = n(clawed_mt)


def hold_item(history: History, hold_id: str, amount_mt: int, at: str, *, active: bool) -> Item:
    item: Item = {
        "PK": history.pk,
        "SK": s(f"ACCOUNT#HOLD#{hold_id}"),
        "entity": s("hold"),
        "hold_id": s(hold_id),
        "customer_id": s(history.customer_id),
        "amount_mt": n(amount_mt if active else 0),
        "original_mt": n(amount_mt),
        "captured_mt": n(0),
        "released_mt": n(0 if active else amount_mt),
        "hold_status": s("active" if active else "released"),
        "created_at": s(at),
        "expires_at": s(at),
        "request_hash": s(request_hash(hold_id)),
    }
    if active:
        item["active_shard"] = s("HOLDS#0")
        item["active_expires_at"] = s(at)
    else:
        item["closed_at"] = s(at)
    return item


def account_item(
    history: History, totals: dict[str, int], used_by_action: dict[str, int], *, planted: bool
) -> Item:
    balance_mt = history.balance_mt + (1_234_000 if planted else 0)
    change_id, balance_delta_mt, held_delta_mt = history.last_change
    item: Item = {
        "PK": history.pk,
        "SK": s("ACCOUNT"),
        "customer_id": s(history.customer_id),
        "balance_mt": n(balance_mt),
        "held_mt": n(history.held_mt),
        "available_mt": n(balance_mt - history.held_mt),
        "version": n(history.version),
        "created_at": s(stamp(FIRST_DAY)),
        "updated_at": s(stamp(history.clock)),
        "used_mt": n(sum(used_by_action.values())),
        "last_change_id": s(change_id),
        "last_balance_delta_mt": n(balance_delta_mt),
        "last_held_delta_mt": n(held_delta_mt),
        **{name: n(value) for name, value in totals.items() if value},
        **{usage_counter(a): n(mt) for a, mt in used_by_action.items()},
    }
    return item


def anomaly_of(index: int, anomaly_every: int) -> str | None:
    """The difference planted in customer `index`: every `anomaly_every`-th customer, in
    turn each of ANOMALIES."""
    if anomaly_every <= 0 or index % anomaly_every != anomaly_every - 1:
        return None
    return ANOMALIES[(index // anomaly_every) % len(ANOMALIES)]


def generated_items(
    first: int, count: int, *, entries: int, anomaly_every: int, seed: int
) -> Iterator[Item]:
    """The items of customers first .. first + count - 1 (each from its own seed)."""
    for index in range(first, first + count):
        rng = random.Random(seed * 1_000_003 + index)
        yield from customer_items(
            rng, index, entries=entries, anomaly=anomaly_of(index, anomaly_every)
        )


def _write_chunk(arguments: tuple[Path, int, int, int, int, int]) -> int:
    data, first, count, entries, anomaly_every, seed = arguments
    items = generated_items(first, count, entries=entries, anomaly_every=anomaly_every, seed=seed)
    return write_data_file(data / f"{first // CUSTOMERS_PER_FILE:05d}.json.gz", items)


def generate(
    root: Path, *, customers: int, entries: int, anomaly_every: int, seed: int, workers: int
) -> tuple[int, list[dict[str, str]]]:
    """Write the export under `root` (and planted.json); items written and what was planted."""
    export_time = FIRST_DAY + timedelta(days=DAYS)
    export_id = new_export_id(export_time)
    data = data_folder(root, export_id)
    chunks = [
        (data, first, min(CUSTOMERS_PER_FILE, customers - first), entries, anomaly_every, seed)
        for first in range(0, customers, CUSTOMERS_PER_FILE)
    ]
    with ProcessPoolExecutor(workers) as pool:
        item_count = sum(pool.map(_write_chunk, chunks))
    arn = "arn:aws:dynamodb:us-east-1:000000000000:table/LedgerTable-generated"
    finish_export(root, export_id, export_time=export_time, table_arn=arn, item_count=item_count)
    planted = [
        {"customer_id": f"cust_{index:08d}", "anomaly": kind, "check": ANOMALY_CHECK[kind]}
        for index in range(customers)
        if (kind := anomaly_of(index, anomaly_every))
    ]
    (root / "planted.json").write_text(json.dumps(planted, indent=1) + "\n")
    return item_count, planted


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.generate_export", description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--entries-per-customer", type=int, default=10)
    parser.add_argument("--anomaly-every", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if (args.out / "AWSDynamoDB").exists():
        parser.error(f"{args.out} already holds an export; remove it first")
    started = time.monotonic()
    items, planted = generate(
        args.out,
        customers=args.customers,
        entries=args.entries_per_customer,
        anomaly_every=args.anomaly_every,
        seed=args.seed,
        workers=args.workers,
    )
    print(
        f"{items} items ({args.customers} customers x {args.entries_per_customer} entries), "
        f"{len(planted)} planted differences, in {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
