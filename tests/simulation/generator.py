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
OPERATIONS = [
    "TransactWriteItems",
    "TransactWriteItems",
    "UpdateItem",
    "PutItem",
    "GetItem",
    "Query",
]
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
        self.opening: list[Step] | None = None

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def prologue(self) -> list[Step]:
        """The seed's opening: accounts funded, and most often one customer with a saved card
        and auto top-up on (so that short histories reach crossings, caps and the breaker)."""
        steps = [
            Step(
                "grant",
                {
                    "c": c,
                    "key": self._id("g"),
                    "amount_mt": self.rng.choice([2_000, 8_000]) * 1_000,
                },
            )
            for c in CUSTOMERS
            if self.rng.random() < 0.8
        ]
        if self.rng.random() < 0.7:
            c = self.rng.choice(CUSTOMERS)
            steps.append(
                Step("save_card", {"c": c, "handle": self._id("o"), "card": self.rng.choice(CARDS)})
            )
            settings = self._settings_body(enabled=True)
            steps.append(Step("settings", {"c": c, "body": settings}))
        return steps

    def next_step(self, model: Model) -> Step:
        rng = self.rng
        if self.opening is None:
            self.opening = self.prologue()
        if self.opening:
            return self.opening.pop(0)
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
            ("refund", 4),
            ("dispute", 2),
            ("save_card", 3),
            ("settings", 5),
            ("stream", 8),
            ("stripe_send", 6),
            ("recover", 1),
        ]
        kind = rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
        step: Step = getattr(self, f"_{kind}")(model)
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
        c = self._customer()
        available_tokens = model.customers[c].available_mt // 1_000
        if available_tokens > 1 and self.rng.random() < 0.3:
            # Most of what is left (sometimes a little more): crossings and refusals.
            minutes = max(int(available_tokens * self.rng.uniform(0.4, 1.05)), 1)
            return Step(
                "debit",
                {"c": c, "key": self._id("d"), "lines": [["vm_runtime", str(minutes), "vm-1"]]},
            )
        return Step("debit", {"c": c, "key": self._id("d"), "lines": self._lines()})

    def _customer_where(self, model: Model, wanted: bool, has_card: bool) -> str:
        """A customer with (or without) a saved card, most of the time."""
        matching = [
            c for c in CUSTOMERS if (model.customers[c].top_up.card is not None) == has_card
        ]
        if matching and self.rng.random() < (0.8 if wanted else 0.0):
            return self.rng.choice(matching)
        return self._customer()

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

    def _save_card(self, model: Model) -> Step:
        """Buy a Starter pack through Checkout saving the card: paid, and the card's
        `payment_method.attached` delivered."""
        c = self._customer_where(model, True, has_card=False)
        return Step("save_card", {"c": c, "handle": self._id("o"), "card": self.rng.choice(CARDS)})

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
        enabled = [
            h
            for h, o in model.orders.items()
            if o.ever_paid and model.customers[o.customer].top_up.enabled
        ]
        if enabled and self.rng.random() < 0.5:  # where a clawback may cross a threshold
            handle = self.rng.choice(enabled)
        order = model.orders.get(handle)
        price = order.price_cents if order else 1_900
        cents = self.rng.choice(
            [price // 4, price // 2, price, price, order.refunded_cents if order else 0]
        )
        return Step("refund", {"handle": handle, "cents": max(cents, 1)})

    def _dispute(self, model: Model) -> Step:
        handle = self._order(model, paid=True, auto=True)
        order = model.orders.get(handle)
        price = order.price_cents if order else 1_900
        return Step(
            "dispute",
            {
                "handle": handle,
                "dispute": self._id("dp"),
                "cents": self.rng.choice([price // 3, price]),
            },
        )

    def _settings(self, model: Model) -> Step:
        body = self._settings_body(enabled=self.rng.random() < 0.85)
        return Step(
            "settings", {"c": self._customer_where(model, True, has_card=True), "body": body}
        )

    def _settings_body(self, *, enabled: bool) -> dict[str, Any]:
        package = self.rng.choice(["starter", "starter", "growth"])
        body: dict[str, Any] = {
            "enabled": enabled,
            "package_id": package,
            "threshold": self.rng.choice(["1500", "3000", "6000"]),
            "max_charges_per_day": self.rng.choice([1, 2, 3]),
            "max_cents_per_month": self.rng.choice([1_900, 10_000, 50_000, 50_000]),
        }
        if self.rng.random() < 0.3:
            body["target"] = self.rng.choice(["4000", "9000", "20000"])
        if enabled:
            body["consent_text_version"] = "current"
        return body

    def _stream(self, model: Model) -> Step:
        consumer = self.rng.choice(["ledger", "charger", "both", "both"])
        faults = (
            []
            if self.rng.random() < 0.6
            else [self.rng.choice(STRIPE_FAULTS) for _ in range(self.rng.choice([1, 2, 4]))]
        )
        return Step(
            "stream",
            {"consumer": consumer, "seed": self.rng.getrandbits(32), "stripe_faults": faults},
        )

    def _stripe_send(self, model: Model) -> Step:
        return Step(
            "stripe_send", {"pick": self.rng.getrandbits(16), "redeliver": self.rng.random() < 0.3}
        )

    def _recover(self, model: Model) -> Step:
        return Step("recover", {"c": self._customer()})
