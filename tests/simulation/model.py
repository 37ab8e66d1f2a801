"""The reference model: a customer's ledger as DESIGN.md and the README describe it, in plain
Python, with no I/O. Every operation returns the reply it expects (the fields the simulation
compares) and moves the model's own state; the simulation runs the same operation on the real
system and compares both, then compares the states.

Written from the documents, not from the code: prices from the catalog's rates (cost = rate x
quantity rounded up per line), holds as two-phase transfers, credits once per order,
clawbacks of the refunded or disputed share rounded up, auto top-up's admission within caps
and its breaker. Where the documents say nothing, the model answers as the service does and
says so ("not in the documents"): what a late settle or renew reports as released, the order
in which a refused admission names its reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

# The catalog (README "The catalog"): milli-tokens per unit, and packs.
RATES_MT = {
    "vm_runtime": 1_000,
    "screenshot": 500,
    "api_call": 100,
    "ai_message": 200,
    "file_upload": 1_000,
}
PACKAGES = {  # price cents, tokens + bonus in mt
    "starter": (1_900, 2_000_000),
    "growth": (4_900, 6_500_000),
    "pro": (9_900, 16_500_000),
}
FAILURES_BEFORE_PAUSE = 3
MAX_PACKS = 10
STRIPE_REQUESTS = 4
# An attempt the charger first sees this long after its admission is past Stripe's
# idempotency window: it is looked up by its id, never sent again (README, Auto top-up).
STALE_AFTER = timedelta(hours=23)
CARD_OUTCOMES = {
    "pm_card_visa": "succeeded",
    "pm_card_chargeDeclined": "declined",
    "pm_card_authenticationRequired": "authentication_required",
}

Line = tuple[str, Fraction, str | None]  # action, quantity, vm_id
Reply = dict[str, Any]


def cost_mt(lines: list[Line]) -> int:
    return sum(_line_cost(action, quantity) for action, quantity, _ in lines)


def _line_cost(action: str, quantity: Fraction) -> int:
    product = RATES_MT[action] * quantity
    return -((-product.numerator) // product.denominator)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _covered(c: Customer, need_mt: int) -> bool:
    """Whether available tokens cover what an op takes from them. An op that takes nothing
    (usage within its hold, a renew that reserves less than it frees) is never refused,
    even when a clawback left available below zero: those tokens were reserved before."""
    return need_mt <= 0 or c.available_mt >= need_mt


def refused(code: str) -> Reply:
    return {"ok": False, "code": code}


@dataclass
class Hold:
    hold_id: str
    vm_id: str | None
    amount_mt: int  # still reserved
    original_mt: int
    expires_at: str
    captured_mt: int = 0
    released_mt: int = 0
    status: str = "active"

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass
class Entry:
    amount_mt: int
    fingerprint: object
    reply: Reply | None = None


@dataclass
class Order:
    handle: str
    customer: str
    package: str
    price_cents: int
    total_mt: int
    kind: str = "purchase"
    packs: int = 1
    status: str = "pending"
    ever_paid: bool = False
    refunded_cents: int = 0
    disputed_cents: int = 0
    clawed_back_mt: int = 0
    attempt_version: int | None = None
    recovery: bool = False  # an on-session recovery Checkout was attached


@dataclass
class TopUp:
    enabled: bool = False
    package: str | None = None
    threshold_mt: int | None = None
    target_mt: int | None = None
    per_day: int = 2
    cap_cents: int | None = None
    stripe_customer: bool = False
    card: str | None = None  # the test card's name
    card_pm: str | None = None
    in_flight: int | None = None
    failures: int = 0
    paused: str | None = None
    charges: dict[str, int] = field(default_factory=dict)  # day -> charges admitted
    cents: dict[str, int] = field(default_factory=dict)  # month -> cents admitted
    attempts: dict[int, str] = field(default_factory=dict)  # version -> status
    admitted_at: dict[int, datetime] = field(default_factory=dict)  # version -> when
    largest_per_day: int = 0  # the largest caps ever set, for the checks at Stripe's side
    largest_cap_cents: int = 0
    charged: int = 0  # PaymentIntents Stripe made
    charged_when_paused: int = 0  # ... when the breaker last tripped


@dataclass
class Write:
    """One write of the ACCOUNT item, as the stream will carry it."""

    version: int
    balance_mt: int
    held_mt: int | None  # None: one of a sweep's releases, whose order the sweeper picks
    clawback: bool


@dataclass
class Customer:
    customer_id: str
    exists: bool = False
    balance_mt: int = 0
    held_mt: int = 0
    version: int = 0
    holds: dict[str, Hold] = field(default_factory=dict)
    entries: dict[tuple[str, str], Entry] = field(default_factory=dict)
    usage: dict[tuple[str, str], int] = field(default_factory=dict)  # (day, action) -> mt
    top_up: TopUp = field(default_factory=TopUp)
    writes: dict[int, Write] = field(default_factory=dict)

    @property
    def available_mt(self) -> int:
        return self.balance_mt - self.held_mt


class Model:
    """Every customer's ledger, holds, orders and auto top-up, on the simulation's clock."""

    def __init__(self, customer_ids: list[str], now: datetime) -> None:
        self.customers = {c: Customer(c) for c in customer_ids}
        self.orders: dict[str, Order] = {}  # handle -> order
        self.now = now
        self.seen: Counter[str] = Counter()  # what the history reached, for its coverage

    # ---- bookkeeping -------------------------------------------------------------------

    @property
    def day(self) -> str:
        return self.now.strftime("%Y-%m-%d")

    def _write(
        self,
        c: Customer,
        *,
        balance_mt: int = 0,
        held_mt: int = 0,
        lines: list[Line] | None = None,
        clawback: bool = False,
    ) -> None:
        """One account write: balance, held and available move together; version + 1."""
        c.exists = True
        c.balance_mt += balance_mt
        c.held_mt += held_mt
        c.version += 1
        for action, quantity, _ in lines or []:
            key = (self.day, action)
            c.usage[key] = c.usage.get(key, 0) + _line_cost(action, quantity)
        c.writes[c.version] = Write(c.version, c.balance_mt, c.held_mt, clawback)

    def _post(
        self,
        c: Customer,
        scope: str,
        key: str,
        amount_mt: int,
        fingerprint: object,
        *,
        lines: list[Line] | None = None,
        reply: Reply | None = None,
        clawback: bool = False,
        held_mt: int = 0,
    ) -> None:
        c.entries[(scope, key)] = Entry(amount_mt, fingerprint, reply)
        self._write(c, balance_mt=amount_mt, held_mt=held_mt, lines=lines, clawback=clawback)

    # ---- debits --------------------------------------------------------------------------

    def debit(self, customer_id: str, key: str, lines: list[Line]) -> Reply:
        c = self.customers[customer_id]
        cost = cost_mt(lines)
        fingerprint = ("debit", tuple(lines))
        entry = c.entries.get(("usage", key))
        if entry is not None:
            if entry.fingerprint != fingerprint:
                return refused("idempotency_key_reused")
            return {"ok": True, "debited_mt": -entry.amount_mt, "replayed": True}
        if not c.exists:
            return refused("customer_not_found")
        if c.available_mt < cost:
            return refused("insufficient_tokens")
        self._post(c, "usage", key, -cost, fingerprint, lines=lines)
        return {"ok": True, "debited_mt": cost, "replayed": False}

    # ---- holds (README "Running VMs: holds") ------------------------------------------------

    def place_hold(
        self, customer_id: str, hold_id: str, amount_mt: int, expires_in_s: int, vm_id: str | None
    ) -> Reply:
        """`hold`: reserve available tokens; a repeated hold id answers the first hold."""
        c = self.customers[customer_id]
        existing = c.holds.get(hold_id)
        if existing is not None:
            if (existing.original_mt, existing.vm_id) != (amount_mt, vm_id):
                return refused("idempotency_key_reused")
            return self._hold_reply(existing, replayed=True)
        if not c.exists:
            return refused("customer_not_found")
        if c.available_mt < amount_mt:
            return refused("insufficient_tokens")
        hold = self._place(c, hold_id, amount_mt, expires_in_s, vm_id)
        self._write(c, held_mt=hold.amount_mt)
        return self._hold_reply(hold, replayed=False)

    def _place(
        self, c: Customer, hold_id: str, amount_mt: int, expires_in_s: int, vm_id: str | None
    ) -> Hold:
        """A new hold (its account write is the caller's: alone, or in a renew's)."""
        expires = iso(self.now + timedelta(seconds=expires_in_s))
        hold = Hold(hold_id, vm_id, amount_mt, amount_mt, expires)
        c.holds[hold_id] = hold
        return hold

    @staticmethod
    def _hold_reply(hold: Hold, *, replayed: bool) -> Reply:
        return {
            "ok": True,
            "held_mt": hold.original_mt,
            "expires_at": hold.expires_at,
            "replayed": replayed,
        }

    def settle(self, customer_id: str, hold_id: str, lines: list[Line]) -> Reply:
        c = self.customers[customer_id]
        hold = c.holds.get(hold_id)
        if hold is None:
            return refused("hold_not_found")
        fingerprint = ("settle", tuple(lines))
        if not hold.active:
            return self._late(c, "settle", hold, lines, fingerprint)
        cost = cost_mt(lines)
        from_hold = min(cost, hold.amount_mt)
        if not _covered(c, cost - hold.amount_mt):
            return refused("insufficient_tokens")
        released = hold.amount_mt - from_hold
        reply = {"released_mt": released, "late": False}
        self._post(
            c,
            "settle",
            hold_id,
            -cost,
            fingerprint,
            lines=lines,
            reply=reply,
            held_mt=-hold.amount_mt,
        )
        hold.captured_mt += from_hold
        hold.released_mt, hold.amount_mt, hold.status = released, 0, "settled"
        return {"ok": True, "debited_mt": cost, **reply, "replayed": False}

    def _late(
        self, c: Customer, scope: str, hold: Hold, lines: list[Line], fingerprint: object
    ) -> Reply:
        """A settle or renew of a hold no longer active: an ordinary debit keyed by the hold,
        answered as the first call was when it is a repeat."""
        entry = c.entries.get((scope, hold.hold_id))
        if entry is not None:
            if entry.fingerprint != fingerprint:
                return refused("idempotency_key_reused")
            assert entry.reply is not None
            return {"ok": True, "debited_mt": -entry.amount_mt, **entry.reply, "replayed": True}
        cost = cost_mt(lines)
        if c.available_mt < cost:
            return refused("insufficient_tokens")
        # Not in the documents: after a settle, the hold's release is reported again and the
        # call is not `late`; after a release or expiry, nothing released and `late`.
        settled = hold.status == "settled"
        reply = {"released_mt": hold.released_mt if settled else 0, "late": not settled}
        self._post(c, scope, hold.hold_id, -cost, fingerprint, lines=lines, reply=reply)
        return {"ok": True, "debited_mt": cost, **reply, "replayed": False}

    def renew(
        self,
        customer_id: str,
        hold_id: str,
        lines: list[Line],
        next_hold_id: str,
        amount_mt: int,
        expires_in_s: int,
        vm_id: str | None,
    ) -> Reply:
        """Settle and hold again atomically; when the next hold is not covered, the usage is
        still captured and the old hold kept (shrunk) as the VM's grace."""
        c = self.customers[customer_id]
        hold = c.holds.get(hold_id)
        if hold is None:
            return refused("hold_not_found")
        fingerprint = ("renew", tuple(lines), next_hold_id, amount_mt)
        cost = cost_mt(lines)
        if not hold.active:
            return self._late_renew(
                c, hold, lines, fingerprint, next_hold_id, amount_mt, expires_in_s, vm_id
            )
        entry = c.entries.get(("renew", hold_id))
        if entry is not None:  # a refused renew kept this hold: its repeat answers the same
            if entry.fingerprint != fingerprint:
                return refused("idempotency_key_reused")
            assert entry.reply is not None
            return {"ok": True, "debited_mt": -entry.amount_mt, **entry.reply, "replayed": True}
        from_hold = min(cost, hold.amount_mt)
        need = cost - hold.amount_mt + amount_mt
        if _covered(c, need):
            if next_hold_id in c.holds:
                return refused("idempotency_key_reused")
            released = hold.amount_mt - from_hold
            nxt = self._place(c, next_hold_id, amount_mt, expires_in_s, vm_id)
            reply = {
                "released_mt": released,
                "late": False,
                "renewed": True,
                "expires_at": nxt.expires_at,
            }
            self._post(
                c,
                "renew",
                hold_id,
                -cost,
                fingerprint,
                lines=lines,
                reply=reply,
                held_mt=-hold.amount_mt + amount_mt,
            )
            hold.captured_mt += from_hold
            hold.released_mt, hold.amount_mt, hold.status = released, 0, "settled"
            return {"ok": True, "debited_mt": cost, **reply, "replayed": False}
        # Not covered: capture anyway and keep the rest of the old hold until its expiry.
        if not _covered(c, cost - from_hold):
            return refused("insufficient_tokens")
        reply = {"released_mt": 0, "late": False, "renewed": False, "grace_until": hold.expires_at}
        self._post(
            c, "renew", hold_id, -cost, fingerprint, lines=lines, reply=reply, held_mt=-from_hold
        )
        hold.captured_mt += from_hold
        hold.amount_mt -= from_hold
        return {"ok": True, "debited_mt": cost, **reply, "replayed": False}

    def _late_renew(
        self,
        c: Customer,
        hold: Hold,
        lines: list[Line],
        fingerprint: object,
        next_hold_id: str,
        amount_mt: int,
        expires_in_s: int,
        vm_id: str | None,
    ) -> Reply:
        """A renew of a hold no longer active: the usage billed as a debit and, when
        available tokens cover both, the next hold placed in the same write. A repeat
        answers the first reply and moves nothing."""
        entry = c.entries.get(("renew", hold.hold_id))
        if entry is not None:
            return self._late(c, "renew", hold, lines, fingerprint)
        cost = cost_mt(lines)
        settled = hold.status == "settled"  # not in the documents: as in `_late`
        reply: Reply = {"released_mt": hold.released_mt if settled else 0, "late": not settled}
        if c.available_mt >= cost + amount_mt:
            if next_hold_id in c.holds:
                return refused("idempotency_key_reused")
            nxt = self._place(c, next_hold_id, amount_mt, expires_in_s, vm_id)
            reply |= {"renewed": True, "expires_at": nxt.expires_at}
            self._post(
                c,
                "renew",
                hold.hold_id,
                -cost,
                fingerprint,
                lines=lines,
                reply=reply,
                held_mt=amount_mt,
            )
            return {"ok": True, "debited_mt": cost, **reply, "replayed": False}
        if c.available_mt < cost:
            return refused("insufficient_tokens")
        reply |= {"renewed": False, "grace_until": None}
        self._post(c, "renew", hold.hold_id, -cost, fingerprint, lines=lines, reply=reply)
        return {"ok": True, "debited_mt": cost, **reply, "replayed": False}

    def release(self, customer_id: str, hold_id: str) -> Reply:
        c = self.customers[customer_id]
        hold = c.holds.get(hold_id)
        if hold is None:
            return refused("hold_not_found")
        if not hold.active:
            released = hold.released_mt if hold.status == "released" else 0
            return {"ok": True, "released_mt": released, "replayed": True}
        self._close(c, hold, "released")
        return {"ok": True, "released_mt": hold.released_mt, "replayed": False}

    def _close(self, c: Customer, hold: Hold, status: str) -> None:
        self._write(c, held_mt=-hold.amount_mt)
        hold.released_mt, hold.amount_mt, hold.status = hold.amount_mt, 0, status

    def sweep(self) -> Reply:
        """The holds-sweeper: every active hold past its expiry is released (`expired`)."""
        now = iso(self.now)
        released = 0
        for c in self.customers.values():
            first = c.version + 1
            for hold in c.holds.values():
                if hold.active and hold.expires_at <= now:
                    self._close(c, hold, "expired")
                    released += 1
            for version in range(first, c.version):  # in between, held depends on the order
                c.writes[version].held_mt = None
        return {"released": released}

    # ---- grants --------------------------------------------------------------------------------

    def grant(self, customer_id: str, key: str, amount_mt: int) -> Reply:
        c = self.customers[customer_id]
        entry = c.entries.get(("grant", key))
        if entry is not None:
            if entry.amount_mt != amount_mt:
                return {"status": 409}
            return {"status": 200, "amount_mt": amount_mt, "replayed": True}
        self._post(c, "grant", key, amount_mt, amount_mt)
        return {"status": 201, "amount_mt": amount_mt, "replayed": False}

    # ---- orders and Stripe's events (README "Buying tokens") ----------------------------

    def purchase(self, customer_id: str, handle: str, package: str, *, save_card: bool) -> Reply:
        if handle not in self.orders:
            price, total = PACKAGES[package]
            self.orders[handle] = Order(handle, customer_id, package, price, total)
        if save_card:
            self.customers[customer_id].top_up.stripe_customer = True
        return {"status": 200, "order": handle, "price_cents": self.orders[handle].price_cents}

    def session_event(self, handle: str, event_type: str, *, paid: bool) -> Reply:
        order = self.orders[handle]
        if event_type == "checkout.session.expired":
            return {"action": self._mark(order, "expired")}
        if event_type == "checkout.session.async_payment_failed":
            return {"action": self._mark(order, "failed")}
        if event_type == "checkout.session.completed" and not paid:
            return {"action": "awaiting_payment"}
        return {"action": self._credit(order)}

    @staticmethod
    def _mark(order: Order, status: str) -> str:
        if order.status != "pending":
            return "unchanged"
        order.status = status
        return status

    def _credit(self, order: Order) -> str:
        c = self.customers[order.customer]
        if ("order", order.handle) in c.entries:
            return "already_credited"
        if order.status != "pending":
            return "not_credited"
        self._post(c, "order", order.handle, order.total_mt, order.total_mt)
        order.status, order.ever_paid = "paid", True
        return "credited"

    def clawback(
        self, handle: str, key: str, *, refunded_cents: int | None, disputed_cents: int | None
    ) -> Reply:
        """A refund (cumulative amount) or a dispute: take back the refunded or disputed share
        of the credited tokens, rounded up, never more than was credited."""
        order = self.orders[handle]
        if not order.ever_paid:
            return {"status": 503}  # not credited yet: Stripe redelivers after the credit
        refunded = max(order.refunded_cents, refunded_cents or 0)
        disputed = max(order.disputed_cents, disputed_cents or 0)
        covered = min(order.price_cents, refunded + disputed)
        target = -(-order.total_mt * covered // order.price_cents)
        delta = target - order.clawed_back_mt
        status = (
            "disputed"
            if disputed
            else "refunded"
            if refunded >= order.price_cents
            else "partially_refunded"
        )
        if delta <= 0:
            if (refunded, disputed) == (order.refunded_cents, order.disputed_cents):
                return {"status": 200, "action": "already_clawed_back"}
            order.refunded_cents, order.disputed_cents, order.status = refunded, disputed, status
            return {"status": 200, "action": "recorded"}
        c = self.customers[order.customer]
        if ("clawback", key) in c.entries:
            return {"status": 200, "action": "already_clawed_back"}
        self._post(c, "clawback", key, -delta, key, clawback=True)
        order.refunded_cents, order.disputed_cents, order.status = refunded, disputed, status
        order.clawed_back_mt = target
        return {"status": 200, "action": "clawed_back"}

    # ---- auto top-up (README "Auto top-up") ------------------------------------------------------

    def put_settings(self, customer_id: str, body: dict[str, Any]) -> Reply:
        t = self.customers[customer_id].top_up
        package = body.get("package_id") or t.package or "starter"
        price, total = PACKAGES[package]
        threshold = int(Fraction(body.get("threshold", "500")) * 1000)
        target = int(Fraction(body["target"]) * 1000) if "target" in body else threshold + total
        cap = body.get("max_cents_per_month")
        if target <= threshold or target - threshold > MAX_PACKS * total:
            return {"status": 400}
        if (cap is None and body["enabled"]) or (cap is not None and not price <= cap):
            return {"status": 400}
        if body["enabled"] and t.card is None:
            return {"status": 409}
        t.enabled, t.package, t.threshold_mt, t.target_mt = (
            body["enabled"],
            package,
            threshold,
            target,
        )
        t.per_day = body.get("max_charges_per_day", 2)
        t.cap_cents = cap if cap is not None else t.cap_cents
        t.largest_per_day = max(t.largest_per_day, t.per_day)
        t.largest_cap_cents = max(t.largest_cap_cents, t.cap_cents or 0)
        return {"status": 200}

    def card_attached(self, customer_id: str, card: str, pm_id: str) -> Reply:
        t = self.customers[customer_id].top_up
        if t.card_pm == pm_id:
            return {"action": "card_unchanged"}
        t.card, t.card_pm, t.failures, t.paused = card, pm_id, 0, None
        return {"action": "card_saved"}

    def account_change(self, change: dict[str, Any]) -> str | None:
        """Admission of an auto top-up by one ACCOUNT change the stream delivered."""
        c = self.customers[change["customer_id"]]
        t = c.top_up
        old, new = change["old_available_mt"], change["available_mt"]
        if old is None or new >= old:
            return None
        if not t.enabled or t.threshold_mt is None or not old >= t.threshold_mt > new:
            return None
        if change["clawback"]:
            # A refund or dispute took the tokens back: buying them again would charge the
            # card for what its owner just refused (README, Auto top-up: no refund -> charge).
            self.seen["clawback crossing"] += 1
            return None
        self.seen["crossing"] += 1
        assert t.package is not None
        assert t.target_mt is not None
        version = change["version"]
        price, total = PACKAGES[t.package]
        packs = min(-(-max(t.target_mt - new, 1) // total), MAX_PACKS)
        amount = price * packs
        month = self.now.strftime("%Y-%m")
        if amount > (t.cap_cents or 0):
            t.attempts.setdefault(version, "monthly_cap_reached")
            return "monthly_cap_reached"
        if version in t.attempts:
            return "duplicate"
        reason = (  # the order of the reasons is not in the documents: the service's
            "no_card"
            if t.card is None
            else "paused"
            if t.paused
            else "cap_reached"
            if t.charges.get(self.day, 0) >= t.per_day
            else "monthly_cap_reached"
            if t.cents.get(month, 0) + amount > (t.cap_cents or 0)
            else "in_flight"
            if t.in_flight is not None
            else None
        )
        if reason is not None:
            t.attempts[version] = reason
            return reason
        t.attempts[version] = "admitted"
        t.admitted_at[version] = self.now
        t.in_flight = version
        t.charges = {self.day: t.charges.get(self.day, 0) + 1}
        t.cents = {month: t.cents.get(month, 0) + amount}
        handle = f"auto:{c.customer_id}:{version}"
        self.orders[handle] = Order(
            handle,
            c.customer_id,
            t.package,
            amount,
            total * packs,
            "auto_top_up",
            packs,
            attempt_version=version,
        )
        return "admitted"

    def charge(self, customer_id: str, version: int, faults: list[str]) -> Reply:
        """The charger on one admitted attempt: Stripe's answers to up to 4 requests under one
        key (`faults` are consumed as the fake Stripe consumes them), then the outcome."""
        t = self.customers[customer_id].top_up
        if t.attempts.get(version) != "admitted":
            return {"outcome": "already_ended", "charged": False}
        order = self.orders[f"auto:{customer_id}:{version}"]
        outcome, charged = "provider_unavailable", False
        if t.card is None:
            outcome = "error"
        elif self.now - t.admitted_at[version] >= STALE_AFTER:
            # Looked up by its attempt id: no payment was made under it (a charge whose end
            # was lost is retried within the step), so the attempt and its order expire.
            order.status = "expired"
            t.in_flight = None
            t.attempts[version] = "expired"
            return {"outcome": "expired", "charged": False}
        else:
            for _ in range(STRIPE_REQUESTS):
                fault = faults.pop(0) if faults else None
                if fault in ("500", "429"):
                    continue
                charged = True
                if fault == "timeout":
                    continue
                outcome = CARD_OUTCOMES[t.card]
                break
        failure = outcome in ("declined", "authentication_required", "error")
        if outcome == "succeeded":
            t.failures = 0
        elif failure:
            t.failures += 1
        if outcome == "authentication_required":
            t.paused = "authentication_required"
            order.recovery = True
        elif failure and t.failures >= FAILURES_BEFORE_PAUSE:
            t.paused = "declined_repeatedly"
        if outcome == "declined":
            order.status = "failed"
        t.in_flight = None
        t.charged += charged
        if t.paused:
            t.charged_when_paused = t.charged
        paid_already = outcome == "provider_unavailable" and order.ever_paid
        t.attempts[version] = "succeeded" if paid_already else outcome
        return {"outcome": outcome, "charged": charged}

    def payment_succeeded(self, handle: str) -> Reply:
        """`payment_intent.succeeded` of an auto top-up: the order's exactly-once credit."""
        order = self.orders[handle]
        t = self.customers[order.customer].top_up
        action = self._credit(order)
        if action == "credited":
            # Only a successful payment clears a pause (DESIGN.md): this one, once.
            t.failures, t.paused = 0, None
        version = order.attempt_version
        lost = t.attempts.get(version or -1) in ("provider_unavailable", "processing")
        if action in ("credited", "already_credited") and version is not None and lost:
            t.attempts[version] = "succeeded"  # the answer was lost; the payment was not
        return {"action": action}

    def recovery_paid(self, handle: str) -> Reply:
        """The on-session recovery Checkout of an attempt that needed authentication."""
        order = self.orders[handle]
        t = self.customers[order.customer].top_up
        action = self._credit(order)
        if action == "credited":
            t.failures, t.paused = 0, None
        version = order.attempt_version or -1
        if action != "not_credited" and t.attempts.get(version) == "authentication_required":
            t.attempts[version] = "recovered"
        return {"action": action}
