"""Seeded histories: a step list drawn from `random.Random(seed)` and the model's state.

A step is plain data (kind, arguments, an optional fault), so a history can be replayed
without its generator, shortened by the shrinker, and printed. Steps name things by the
model's handles (order `o3`, hold `h7`), never by ids the system made up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from tests.simulation.model import Model

CUSTOMERS = ["cust-a", "cust-b", "cust-c"]
VMS = ["vm-1", "vm-2"]
ACTIONS = ["vm_runtime", "screenshot", "api_call", "ai_message", "file_upload"]
QUANTITIES = ["1", "2", "5", "0.5", "12", "30", "2.25", "100"]
CARDS = ["pm_card_visa", "pm_card_visa", "pm_card_chargeDeclined", "pm_card_authenticationRequired"]
STRIPE_FAULTS = ["500", "429", "timeout"]
OPERATIONS = ["TransactWriteItems", "TransactWriteItems", "UpdateItem", "PutItem", "GetItem", "Query"]
FAULTS = ["lost", "throttle", "5xx", "conflict", "crash"]


@dataclass(frozen=True)
class Fault:
    operation: str
    kind: str  # lost | throttle | 5xx | conflict | crash
    count: int = 1

    def __str__(self) -> str:
        return f"{self.kind}x{self.count}@{self.operation}"


@dataclass(frozen=True)
class Step:
    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    fault: Fault | None = None

    def __str__(self) -> str:
        fault = f"  [fault {self.fault}]" if self.fault else ""
        return f"{self.kind} {self.args}{fault}"


class Generator:
    """Draws the next step from the seed's generator and the model's current state."""

    def __init__(self, seed: int, *, faults: bool) -> None:
        self.rng = random.Random(seed)
        self.faults = faults
        self.counter = 0
        self.past: list[Step] = []  # idempotent ops, to repeat later

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def next_step(self, model: Model) -> Step:
        rng = self.rng
        kinds = [
            ("debit", 20),
            ("hold", 10),
            ("settle", 8),
            ("renew", 8),
            ("release", 4),
            ("repeat", 8),
            ("advance", 6),
            ("sweep", 3),
            ("grant", 5),
            ("purchase", 5),
            ("checkout", 6),
            ("refund", 3),
            ("dispute", 2),
            ("settings", 3),
            ("stream", 8),
            ("stripe_send", 6),
            ("recover", 1),
        ]
        kind = rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
        step = getattr(self, f"_{kind}")(model)
        if step.kind in ("debit", "hold", "settle", "renew", "release", "grant"):
            self.past.append(step)
            self.past = self.past[-50:]
        if self.faults and step.kind not in ("advance", "repeat") and rng.random() < 0.3:
            kind_of_fault = rng.choice(FAULTS)
            operation = rng.choice(OPERATIONS)
            if kind_of_fault == "conflict":
                operation = "TransactWriteItems"
            if kind_of_fault == "crash" and operation in ("GetItem", "Query"):
                operation = "TransactWriteItems"
            count = rng.choice([1, 1, 2, 4]) if kind_of_fault in ("throttle", "5xx") else 1
            step = Step(step.kind, step.args, Fault(operation, kind_of_fault, count))
        return step

    # ---- the kinds of step -----------------------------------------------------------------

    def _customer(self) -> str:
        return self.rng.choice(CUSTOMERS)

    def _lines(self, vm: str | None = None) -> list[list[Any]]:
        return [
            [self.rng.choice(ACTIONS), self.rng.choice(QUANTITIES), vm or self.rng.choice(VMS)]
            for _ in range(self.rng.choice([1, 1, 1, 2, 3, 5]))
        ]

    def _debit(self, model: Model) -> Step:
        return Step("debit", {"c": self._customer(), "key": self._id("d"), "lines": self._lines()})

    def _hold_of(self, model: Model, customer: str) -> str:
        holds = list(model.customers[customer].holds)
        active = [h for h in holds if model.customers[customer].holds[h].active]
        if active and self.rng.random() < 0.8:
            return self.rng.choice(active)
        return self.rng.choice(holds) if holds else "h-none"

    def _amount(self) -> int:
        return self.rng.choice([5, 20, 60, 150, 400, 1_500]) * 1_000

    def _hold(self, model: Model) -> Step:
        return Step(
            "hold",
            {
                "c": self._customer(),
                "hold_id": self._id("h"),
                "amount_mt": self._amount(),
                "expires_in_s": self.rng.choice([60, 120, 600, 3_600]),
                "vm": self.rng.choice(VMS),
            },
        )

    def _settle(self, model: Model) -> Step:
        c = self._customer()
        return Step("settle", {"c": c, "hold_id": self._hold_of(model, c), "lines": self._lines()})

    def _renew(self, model: Model) -> Step:
        c = self._customer()
        return Step(
            "renew",
            {
                "c": c,
                "hold_id": self._hold_of(model, c),
                "lines": self._lines(),
                "next_hold_id": self._id("h"),
                "amount_mt": self._amount(),
                "expires_in_s": self.rng.choice([60, 600, 3_600]),
                "vm": self.rng.choice(VMS),
            },
        )

    def _release(self, model: Model) -> Step:
        c = self._customer()
        return Step("release", {"c": c, "hold_id": self._hold_of(model, c)})

    def _repeat(self, model: Model) -> Step:
        if not self.past:
            return self._debit(model)
        return self.rng.choice(self.past)

    def _advance(self, model: Model) -> Step:
        seconds = self.rng.choice([5, 30, 61, 300, 900, 3_600, 6 * 3_600, 20 * 3_600])
        return Step("advance", {"seconds": seconds})

    def _sweep(self, model: Model) -> Step:
        return Step("sweep")

    def _grant(self, model: Model) -> Step:
        amount = self.rng.choice([100, 500, 2_000, 8_000]) * 1_000
        return Step("grant", {"c": self._customer(), "key": self._id("g"), "amount_mt": amount})

    def _purchase(self, model: Model) -> Step:
        return Step(
            "purchase",
            {
                "c": self._customer(),
                "handle": self._id("o"),
                "package": self.rng.choice(["starter", "growth", "pro"]),
                "save_card": self.rng.random() < 0.4,
                "card": self.rng.choice(CARDS),
            },
        )

    def _order(self, model: Model, *, paid: bool | None = None, auto: bool = False) -> str:
        handles = [
            h
            for h, o in model.orders.items()
            if (paid is None or o.ever_paid == paid) and (auto or o.kind == "purchase")
        ]
        return self.rng.choice(handles) if handles else "o-none"

    def _checkout(self, model: Model) -> Step:
        flow = self.rng.choice(["paid", "paid", "async", "expired", "async_failed"])
        return Step("checkout", {"handle": self._order(model), "flow": flow})

    def _refund(self, model: Model) -> Step:
        handle = self._order(model, paid=self.rng.random() < 0.9, auto=True)
        order = model.orders.get(handle)
        price = order.price_cents if order else 1_900
        cents = self.rng.choice([price // 4, price // 2, price, order.refunded_cents if order else 0])
        return Step("refund", {"handle": handle, "cents": max(cents, 1)})

    def _dispute(self, model: Model) -> Step:
        handle = self._order(model, paid=True, auto=True)
        order = model.orders.get(handle)
        price = order.price_cents if order else 1_900
        return Step(
            "dispute",
            {"handle": handle, "dispute": self._id("dp"), "cents": self.rng.choice([price // 3, price])},
        )

    def _settings(self, model: Model) -> Step:
        enabled = self.rng.random() < 0.85
        package = self.rng.choice(["starter", "starter", "growth"])
        body: dict[str, Any] = {
            "enabled": enabled,
            "package_id": package,
            "threshold": self.rng.choice(["500", "1500", "3000"]),
            "max_charges_per_day": self.rng.choice([1, 2, 3]),
            "max_cents_per_month": self.rng.choice([1_900, 4_000, 10_000, 50_000]),
        }
        if self.rng.random() < 0.3:
            body["target"] = self.rng.choice(["4000", "9000", "20000"])
        if enabled:
            body["consent_text_version"] = "current"
        return Step("settings", {"c": self._customer(), "body": body})

    def _stream(self, model: Model) -> Step:
        consumer = self.rng.choice(["ledger", "charger", "both", "both"])
        faults = [] if self.rng.random() < 0.6 else [
            self.rng.choice(STRIPE_FAULTS) for _ in range(self.rng.choice([1, 2, 4]))
        ]
        return Step("stream", {"consumer": consumer, "seed": self.rng.getrandbits(32), "stripe_faults": faults})

    def _stripe_send(self, model: Model) -> Step:
        return Step("stripe_send", {"pick": self.rng.getrandbits(16), "redeliver": self.rng.random() < 0.3})

    def _recover(self, model: Model) -> Step:
        return Step("recover", {"c": self._customer()})


def generate_step(generator: Generator, model: Model) -> Step:
    return generator.next_step(model)
