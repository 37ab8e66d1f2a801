"""Run a history on the system and the model side by side, checking after every step.

After each step: the reply equals the model's (a repeated op: its first reply), and for the
customers the step touched, the store agrees with the model and with itself: balance = sum
of entries, available = balance - held (below zero only after a clawback), held = sum of
active holds, every order's status and clawed-back total, each order credited at most once
and only when paid, the auto top-up state (in flight, failures, pause, the day's and month's
counters, every attempt). When the stream is drained: usage aggregates = what the model
debited per action and day. At the end of a history: `make reconcile` is clean.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Any

from tests.simulation.generator import CUSTOMERS, Generator, Step
from tests.simulation.model import Line, Model, Reply
from tests.simulation.system import START, SimulatedCrash, System

RETRIES = 4
# Steps that move only the account, its entries and holds: their checks skip orders and
# auto top-up (nothing else could have changed them).
LEDGER_ONLY = frozenset(
    {"debit", "hold", "settle", "renew", "release", "grant", "sweep", "advance"}
)
# What an action may read as when the first call's write landed and a retry answered: the
# same family (the state checks after the step tell whether the right thing happened).
FAMILY_WHEN_RETRIED = {
    "credited": "credit",
    "already_credited": "credit",
    "clawed_back": "clawback",
    "already_clawed_back": "clawback",
    "recorded": "clawback",
    "card_saved": "card",
    "card_unchanged": "card",
    "expired": "status",
    "failed": "status",
    "unchanged": "status",
}


class Violation(AssertionError):
    """The system disagreed with the model, or with an invariant."""

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check


@dataclass
class HistoryResult:
    seed: int
    steps: list[Step]
    trace: list[str]
    observed: list[str] = field(default_factory=list)
    coverage: Counter[str] = field(default_factory=Counter)
    violation: Violation | None = None
    failed_at: int | None = None
    faults: int = 0
    stripe_faults: int = 0
    crashes: int = 0
    retries: int = 0
    seconds: float = 0.0


@dataclass
class _Webhook:
    event_type: str
    obj: dict[str, Any]
    event_id: str


@dataclass
class Runner:
    """One history's model, the system's ids for the model's handles, and what is still
    on its way (stream records, Stripe's events)."""

    system: System
    model: Model = field(init=False)

    def __post_init__(self) -> None:
        self.model = Model(list(CUSTOMERS), START)
        self.order_ids: dict[str, str] = {}  # handle -> order id
        self.sessions: dict[str, str] = {}  # handle -> checkout session id
        self.cards: dict[str, tuple[str, str]] = {}  # payment method -> (customer, card)
        self.pending_stripe: list[tuple[str, dict[str, Any]]] = []
        self.delivered: list[_Webhook] = []
        self.pending_ledger: list[dict[str, Any]] = []
        self.pending_charger: list[dict[str, Any]] = []
        self.first_replies: dict[tuple[Any, ...], Reply] = {}
        self.events = 0
        self.faulted = False
        self.stripe_faults = 0
        self.retries = 0
        self.observed: list[str] = []  # every reply the system gave, in order

    # ---- running one step -------------------------------------------------------------------

    def step(self, step: Step) -> None:
        self.model.now = self.system.now()
        self.faulted = step.fault is not None
        touched = getattr(self, f"_do_{step.kind}")(step)
        self.system.disarm()
        self.check(touched, books=step.kind not in LEDGER_ONLY)

    def _call(self, step: Step, call: Callable[[], Any], retryable: Callable[[Any], bool]) -> Any:
        """The call, faulted as the step says, and retried with the same key while the answer
        says so (an agent, Stripe or Lambda would): the last answer."""
        if step.fault is not None:
            self.system.arm(step.fault.operation, step.fault.kind, step.fault.count)
        answer: Any = None
        for attempt in range(RETRIES):
            self.retries += attempt > 0
            try:
                answer = call()
            except SimulatedCrash:
                answer = _Crashed()
            except Exception as error:
                if step.fault is None:
                    raise Violation(
                        "unhandled error", f"{type(error).__name__}: {error}"
                    ) from error
                answer = _Crashed(f"{type(error).__name__}: {error}")
            self.system.disarm()  # a fault meets the first call only
            if not isinstance(answer, _Crashed) and not retryable(answer):
                return answer
            if step.fault is None and not isinstance(answer, _Crashed):
                return answer  # retryable with no fault: the model decides if that is right
        if isinstance(answer, _Crashed):
            raise Violation("never recovered", f"{step}: {answer.reason}")
        return answer

    def _expect(self, what: str, got: Reply, expected: Reply) -> None:
        self.observed.append(f"{what} {got}")
        if self.faulted:
            got = _retried_form(got)
            expected = _retried_form(expected)
        if got != expected:
            raise Violation(f"{what} reply", f"system {got} != model {expected}")

    def _first_reply(self, identity: tuple[Any, ...], reply: Reply) -> None:
        """Every repeated op is answered with its first reply (`replayed` aside)."""
        shown = {k: v for k, v in reply.items() if k != "replayed"}
        if not reply.get("ok"):
            return
        first = self.first_replies.setdefault(identity, shown)
        if first != shown:
            raise Violation("repeated op", f"{identity}: first {first}, now {shown}")

    # ---- the debit function's ops -------------------------------------------------------------

    def _invoke(self, step: Step, payload: dict[str, Any]) -> Reply:
        reply = self._call(
            step,
            lambda: self.system.invoke_debit(payload),
            lambda r: not r["ok"] and bool(r["error"].get("retryable")),
        )
        return _debit_reply(reply)

    def _do_debit(self, step: Step) -> set[str]:
        a = step.args
        got = self._invoke(
            step,
            {"customer_id": a["c"], "idempotency_key": a["key"], "usage": _usage(a["lines"])},
        )
        self._expect("debit", got, self.model.debit(a["c"], a["key"], _lines(a["lines"])))
        self._first_reply(("debit", a["c"], a["key"], repr(a["lines"])), got)
        return {a["c"]}

    def _do_hold(self, step: Step) -> set[str]:
        a = step.args
        payload = {
            "op": "hold",
            "customer_id": a["c"],
            "hold_id": a["hold_id"],
            "amount": str(Fraction(a["amount_mt"], 1000)),
            "expires_in_s": a["expires_in_s"],
            "vm_id": a["vm"],
        }
        got = self._invoke(step, payload)
        expected = self.model.place_hold(
            a["c"], a["hold_id"], a["amount_mt"], a["expires_in_s"], a["vm"]
        )
        self._expect("hold", got, expected)
        self._first_reply(("hold", a["c"], a["hold_id"], a["amount_mt"], a["vm"]), got)
        return {a["c"]}

    def _do_settle(self, step: Step) -> set[str]:
        a = step.args
        payload = {
            "op": "settle",
            "customer_id": a["c"],
            "hold_id": a["hold_id"],
            "usage": _usage(a["lines"]),
        }
        got = self._invoke(step, payload)
        self._expect("settle", got, self.model.settle(a["c"], a["hold_id"], _lines(a["lines"])))
        self._first_reply(("settle", a["c"], a["hold_id"], repr(a["lines"])), got)
        return {a["c"]}

    def _do_renew(self, step: Step) -> set[str]:
        a = step.args
        payload = {
            "op": "renew",
            "customer_id": a["c"],
            "hold_id": a["hold_id"],
            "usage": _usage(a["lines"]),
            "next_hold_id": a["next_hold_id"],
            "amount": str(Fraction(a["amount_mt"], 1000)),
            "expires_in_s": a["expires_in_s"],
            "vm_id": a["vm"],
        }
        got = self._invoke(step, payload)
        expected = self.model.renew(
            a["c"],
            a["hold_id"],
            _lines(a["lines"]),
            a["next_hold_id"],
            a["amount_mt"],
            a["expires_in_s"],
            a["vm"],
        )
        self._expect("renew", got, expected)
        identity = ("renew", a["c"], a["hold_id"], a["next_hold_id"], a["amount_mt"])
        self._first_reply((*identity, repr(a["lines"])), got)
        return {a["c"]}

    def _do_release(self, step: Step) -> set[str]:
        a = step.args
        got = self._invoke(step, {"op": "release", "customer_id": a["c"], "hold_id": a["hold_id"]})
        self._expect("release", got, self.model.release(a["c"], a["hold_id"]))
        return {a["c"]}

    def _do_advance(self, step: Step) -> set[str]:
        self.system.advance(step.args["seconds"])
        self.model.now = self.system.now()
        return set()

    def _do_sweep(self, step: Step) -> set[str]:
        answer = self._call(step, self.system.sweep, lambda r: False)
        expected = self.model.sweep()
        if not self.faulted and answer != expected:
            raise Violation("sweep reply", f"system {answer} != model {expected}")
        return set(CUSTOMERS)

    # ---- HTTP functions ------------------------------------------------------------------------

    def _do_grant(self, step: Step) -> set[str]:
        a = step.args
        status, body = self._call(
            step,
            lambda: self.system.grant(a["c"], a["key"], str(Fraction(a["amount_mt"], 1000))),
            lambda r: r[0] >= 500,
        )
        got: Reply = {"status": status}
        if status in (200, 201):
            got |= {"amount_mt": body["amount_mt"], "replayed": body["replayed"]}
        self._expect("grant", got, self.model.grant(a["c"], a["key"], a["amount_mt"]))
        if status in (200, 201):  # a replay answers 200 where the first call answered 201
            shown = {"ok": True, "amount_mt": body["amount_mt"], "replayed": body["replayed"]}
            self._first_reply(("grant", a["c"], a["key"], a["amount_mt"]), shown)
        return {a["c"]}

    def _do_purchase(self, step: Step) -> set[str]:
        a = step.args
        status, body = self._call(
            step,
            lambda: self.system.purchase(
                a["c"], a["package"], a["handle"], save_card=a["save_card"]
            ),
            lambda r: r[0] >= 500,
        )
        expected = self.model.purchase(a["c"], a["handle"], a["package"], save_card=a["save_card"])
        got = {"status": status, "order": a["handle"], "price_cents": body.get("price_cents")}
        self._expect("purchase", got, expected)
        known = self.order_ids.setdefault(a["handle"], body["order_id"])
        if (
            known != body["order_id"]
            or self.sessions.setdefault(a["handle"], body["session_id"]) != body["session_id"]
        ):
            raise Violation("repeated op", f"purchase {a['handle']} answered another order")
        return {a["c"]}

    def _do_settings(self, step: Step) -> set[str]:
        a = step.args
        body = dict(a["body"])
        if "consent_text_version" in body:
            body["consent_text_version"] = self.system.consent_version()
        status, _ = self._call(
            step, lambda: self.system.put_auto_top_up(a["c"], body), lambda r: r[0] >= 500
        )
        self._expect(
            "auto top-up settings", {"status": status}, self.model.put_settings(a["c"], body)
        )
        return {a["c"]}

    # ---- Stripe --------------------------------------------------------------------------------

    def _do_checkout(self, step: Step) -> set[str]:
        handle, flow = step.args["handle"], step.args["flow"]
        session_id = self.sessions.get(handle)
        order = self.model.orders.get(handle)
        if session_id is None or order is None:
            return set()
        session = dict(self.system.stripe.sessions[session_id])
        if flow in ("paid", "async"):
            card = "pm_card_visa"
            session = self._pay(session_id, card, order.customer)
            if flow == "async":
                unpaid = session | {"payment_status": "unpaid"}
                self._webhook(step, "checkout.session.completed", unpaid)
                self._webhook(step, "checkout.session.async_payment_succeeded", session)
            else:
                self._webhook(step, "checkout.session.completed", session)
        elif flow == "expired":
            self._webhook(step, "checkout.session.expired", session)
        else:
            self._webhook(step, "checkout.session.async_payment_failed", session)
        return {order.customer}

    def _do_save_card(self, step: Step) -> set[str]:
        a = step.args
        purchase = Step(
            "purchase",
            {"c": a["c"], "handle": a["handle"], "package": "starter", "save_card": True},
            step.fault,
        )
        self._do_purchase(purchase)
        session = self._pay(self.sessions[a["handle"]], a["card"], a["c"])
        self._webhook(step, "checkout.session.completed", session)
        while self.pending_stripe:  # the card's payment_method.attached, at once
            self._webhook(step, *self.pending_stripe.pop(0))
        return {a["c"]}

    def _pay(self, session_id: str, card: str, customer: str) -> dict[str, Any]:
        before = set(self.system.stripe.payment_methods)
        session = self.system.pay_session(session_id, card)
        for pm_id in set(self.system.stripe.payment_methods) - before:
            self.cards[pm_id] = (customer, card)
        self.pending_stripe += self.system.take_stripe_outbox()
        return session

    def _do_recover(self, step: Step) -> set[str]:
        c = step.args["c"]
        waiting = [
            o
            for o in self.model.orders.values()
            if o.customer == c and o.recovery and o.status == "pending"
        ]
        if not waiting:
            return set()
        order = waiting[0]
        session_id = self.system.orders(c)[self._order_id(order.handle)]["session_id"]
        if session_id is None:
            raise Violation("recovery link", f"attempt of {order.handle} has no recovery Checkout")
        session = self._pay(session_id, "pm_card_visa", c)
        self._webhook(step, "checkout.session.completed", session)
        return {c}

    def _order_id(self, handle: str) -> str:
        if handle not in self.order_ids and handle.startswith("auto:"):
            _, customer, version = handle.split(":")
            attempt = self.system.top_up(customer)["attempts"].get(int(version)) or {}
            if attempt.get("order_id"):
                self.order_ids[handle] = attempt["order_id"]
        return self.order_ids.get(handle, "")

    def _handle_of(self, order_id: str) -> str | None:
        return next((h for h, known in self.order_ids.items() if known == order_id), None)

    def _payment(self, handle: str) -> tuple[str, str, dict[str, str]] | None:
        """(payment intent, charge, metadata) of an order Stripe took money for."""
        order = self.model.orders.get(handle)
        order_id = self._order_id(handle)
        if order is None or not order_id:
            return None
        metadata = {"customer_id": order.customer, "order_id": order_id}
        if order.kind == "auto_top_up":
            for paid in self.system.payment_intents():
                if paid["metadata"].get("order_id") == order_id and paid.get("latest_charge"):
                    return paid["id"], paid["latest_charge"], paid["metadata"]
            return None
        session: dict[str, Any] = (
            self.system.stripe.sessions.get(self.sessions.get(handle, "")) or {}
        )
        intent = session.get("payment_intent")
        if not isinstance(intent, str):
            return None
        return intent, "ch_" + intent.removeprefix("pi_"), metadata

    def _do_refund(self, step: Step) -> set[str]:
        found = self._payment(step.args["handle"])
        if found is None:
            return set()
        intent, charge, metadata = found
        order = self.model.orders[step.args["handle"]]
        cents = min(step.args["cents"], order.price_cents)
        refund = {
            "id": charge,
            "object": "charge",
            "amount": order.price_cents,
            "amount_refunded": cents,
            "currency": "usd",
            "payment_intent": intent,
            "refunded": cents >= order.price_cents,
            "metadata": metadata,
        }
        self._webhook(step, "charge.refunded", refund)
        return {order.customer}

    def _do_dispute(self, step: Step) -> set[str]:
        found = self._payment(step.args["handle"])
        if found is None:
            return set()
        intent, charge, metadata = found
        order = self.model.orders[step.args["handle"]]
        dispute = {
            "id": step.args["dispute"],
            "object": "dispute",
            "amount": min(step.args["cents"], order.price_cents),
            "charge": charge,
            "payment_intent": intent,
            "currency": "usd",
            "metadata": metadata,
        }
        self._webhook(step, "charge.dispute.created", dispute)
        return {order.customer}

    def _do_stripe_send(self, step: Step) -> set[str]:
        pick = step.args["pick"]
        wanted = step.args.get("type")
        delivered = [d for d in self.delivered if wanted in (None, d.event_type)]
        if step.args["redeliver"] and delivered:
            sent = delivered[pick % len(delivered)]
            self._deliver(step, sent)
            return set(CUSTOMERS)
        if not self.pending_stripe:
            return set()
        event_type, obj = self.pending_stripe.pop(pick % len(self.pending_stripe))
        self._webhook(step, event_type, obj)
        return set(CUSTOMERS)

    def _webhook(self, step: Step, event_type: str, obj: dict[str, Any]) -> None:
        self.events += 1
        sent = _Webhook(event_type, obj, f"evt_sim_{self.events:06d}")
        self.delivered.append(sent)
        self.delivered = self.delivered[-40:]
        self._deliver(step, sent)

    def _deliver(self, step: Step, sent: _Webhook) -> None:
        status, body = self._call(
            step,
            lambda: self.system.webhook(sent.event_type, sent.obj, sent.event_id),
            lambda r: r[0] >= 500,
        )
        got: Reply = {"status": status}
        if status == 200:
            got["action"] = body["action"]
        expected = self._expected_webhook(sent, got)
        self._expect(f"webhook {sent.event_type}", got, expected)
        self.pending_stripe += self.system.take_stripe_outbox()

    def _expected_webhook(self, sent: _Webhook, got: Reply) -> Reply:
        obj = sent.obj
        metadata = obj.get("metadata") or {}
        handle = self._handle_of(str(metadata.get("order_id")))
        kind = sent.event_type
        if kind == "payment_method.attached":
            customer, card = self.cards[obj["id"]]
            return {"status": 200} | self.model.card_attached(customer, card, obj["id"])
        if kind == "payment_intent.payment_failed":
            return {"status": 200, "action": "ignored"}
        if kind == "charge.succeeded":
            # A receipt on its order (issue 26): documents move no tokens and are not modelled;
            # the ledger's checks after the step still hold whatever it recorded.
            receipts = {"ignored", "charge_recorded", "charge_unchanged"}
            return {
                "status": 200,
                "action": got.get("action") if got.get("action") in receipts else "a receipt",
            }
        if handle is None and kind == "payment_intent.succeeded":
            handle = f"auto:{metadata['customer_id']}:{metadata['attempt_id'].rsplit('_', 1)[1]}"
            self._order_id(handle)
        assert handle is not None, sent
        if kind == "payment_intent.succeeded":
            return {"status": 200} | self.model.payment_succeeded(handle)
        if kind.startswith("checkout.session."):
            if metadata.get("kind") == "auto_top_up_recovery":
                return {"status": 200} | self.model.recovery_paid(handle)
            paid = obj.get("payment_status") == "paid"
            return {"status": 200} | self.model.session_event(handle, kind, paid=paid)
        if kind == "charge.refunded":
            key = f"refund:{obj['id']}:{obj['amount_refunded']}"
            return self.model.clawback(
                handle, key, refunded_cents=obj["amount_refunded"], disputed_cents=None
            )
        key = f"dispute:{obj['id']}"
        return self.model.clawback(handle, key, refunded_cents=None, disputed_cents=obj["amount"])

    # ---- the stream -----------------------------------------------------------------------------

    def _do_stream(self, step: Step) -> set[str]:
        ledger, charger = self.system.stream_records()
        self.pending_ledger += ledger
        self.pending_charger += charger
        rng = random.Random(step.args["seed"])
        consumer = step.args["consumer"]
        if consumer in ("ledger", "both"):
            records, self.pending_ledger = _interleave(self.pending_ledger, rng), []
            while records:
                size = rng.randint(1, 8)
                batch, records = records[:size], records[size:]
                self._ledger_batch(step, batch, rng)
            self.check_usage()  # every account write so far has reached the aggregates
        if consumer in ("charger", "both") and self.pending_charger:
            faults = list(step.args["stripe_faults"])
            self.stripe_faults += len(faults)
            self.system.stripe_faults(list(faults))
            records, self.pending_charger = self.pending_charger, []
            for record in records:
                self._charge(step, record, faults)
            self.system.stripe_faults([])
            self.pending_stripe += self.system.take_stripe_outbox()
        return set(CUSTOMERS)

    def _ledger_batch(self, step: Step, batch: list[dict[str, Any]], rng: random.Random) -> None:
        # Usage entries and VM day counters reach the function too (usage by VM, not modelled).
        accounts = [r for r in batch if r["dynamodb"]["Keys"]["SK"]["S"] == "ACCOUNT"]
        for record in accounts:
            change = self.system.account_change(record)
            self._check_write(change)
            self.model.account_change(change)
        self._deliver_batch(step, self.system.ledger_stream, batch)
        if rng.random() < 0.2:  # Lambda delivers the batch again (e.g. after a timeout)
            for record in accounts:
                self.model.account_change(self.system.account_change(record))
            self._deliver_batch(step, self.system.ledger_stream, batch, faulted=False)

    def _deliver_batch(
        self,
        step: Step,
        handler: Callable[[list[dict[str, Any]]], list[str]],
        batch: list[dict[str, Any]],
        *,
        faulted: bool = True,
    ) -> None:
        """As the event source mapping does: a crash retries the batch, reported failures
        retry from the first failed record."""
        if faulted and step.fault is not None:
            self.system.arm(step.fault.operation, step.fault.kind, step.fault.count)
        remaining = batch
        for _ in range(RETRIES + 2):
            try:
                failed = handler(remaining)
            except SimulatedCrash:
                failed = [remaining[0]["dynamodb"]["SequenceNumber"]]
            except Exception as error:  # the invocation failed (e.g. every record did)
                if step.fault is None:
                    raise Violation(
                        "stream batch failed", f"{type(error).__name__}: {error}"
                    ) from error
                failed = [remaining[0]["dynamodb"]["SequenceNumber"]]
            self.system.disarm()
            if not failed:
                return
            if step.fault is None:
                raise Violation("stream batch failed", f"{failed} with no fault injected")
            self.retries += 1
            sequences = [r["dynamodb"]["SequenceNumber"] for r in remaining]
            first = min(sequences.index(s) for s in failed if s in sequences)
            remaining = remaining[first:]
        raise Violation("never recovered", f"stream batch {step}")

    def _charge(self, step: Step, record: dict[str, Any], faults: list[str]) -> None:
        keys = record["dynamodb"]["Keys"]
        customer = keys["PK"]["S"].removeprefix("CUST#")
        version = int(keys["SK"]["S"].rsplit("#", 1)[1])
        expected = self.model.charge(customer, version, faults)
        transparent = step.fault is not None and step.fault.kind in ("crash", "lost", "conflict")
        before = len(self.system.payment_intents())
        self._deliver_batch(step, self.system.charger, [record], faulted=transparent)
        charged = len(self.system.payment_intents()) - before
        if charged != int(expected["charged"]):
            raise Violation(
                "auto top-up charge",
                f"{customer} v{version}: {charged} PaymentIntents, model {expected}",
            )

    def _check_write(self, change: dict[str, Any]) -> None:
        """The stream carries exactly the account writes the model made."""
        c = self.model.customers[change["customer_id"]]
        write = c.writes.get(change["version"])
        got = (change["balance_mt"], change["held_mt"])
        if write is not None and write.held_mt is None:
            got = (change["balance_mt"], None)
        if write is None or (write.balance_mt, write.held_mt) != got:
            expected = None if write is None else (write.balance_mt, write.held_mt)
            raise Violation(
                "stream record",
                f"{change['customer_id']} v{change['version']}: {got} != model {expected}",
            )

    # ---- checks --------------------------------------------------------------------------

    def check(self, customers: set[str], *, books: bool = True) -> None:
        for customer_id in sorted(customers):
            credits = self._check_account(customer_id)
            if books:
                self._check_orders(customer_id, credits)
                self._check_top_up(customer_id)

    def _check_account(self, customer_id: str) -> dict[str, int]:
        """The account against the model and its own entries and holds; purchase credits
        per order id."""
        c = self.model.customers[customer_id]
        account = self.system.account(customer_id)
        if account is None:
            if c.exists:
                raise Violation("account", f"{customer_id} has no account; model {c.balance_mt}")
            return {}
        expected = {
            "balance_mt": c.balance_mt,
            "held_mt": c.held_mt,
            "available_mt": c.available_mt,
            "version": c.version,
        }
        if account != expected:
            raise Violation("account", f"{customer_id}: system {account} != model {expected}")
        entries = self.system.entries(customer_id)
        if sum(e["amount_mt"] for e in entries) != account["balance_mt"]:
            raise Violation("balance = sum of entries", f"{customer_id}: {account}")
        if account["available_mt"] != account["balance_mt"] - account["held_mt"]:
            raise Violation("available = balance - held", f"{customer_id}: {account}")
        clawed = any(e["kind"] == "clawback" for e in entries)
        if account["available_mt"] < 0 and not clawed:
            raise Violation("available >= 0", f"{customer_id}: {account} with no clawback")
        holds = self.system.holds(customer_id)
        active = sum(h["amount_mt"] for h in holds.values() if h["status"] == "active")
        if active != account["held_mt"]:
            raise Violation("held = sum of active holds", f"{customer_id}: {active} != {account}")
        expected_holds = {
            h.hold_id: {"status": h.status, "amount_mt": h.amount_mt} for h in c.holds.values()
        }
        if holds != expected_holds:
            diff = {
                k: (holds.get(k), expected_holds.get(k))
                for k in holds.keys() | expected_holds.keys()
                if holds.get(k) != expected_holds.get(k)
            }
            raise Violation("holds", f"{customer_id}: system/model {diff}")
        credits: dict[str, int] = {}
        for entry in entries:
            if entry["kind"] == "purchase":
                credits[entry["order_id"]] = credits.get(entry["order_id"], 0) + 1
        return credits

    def _check_orders(self, customer_id: str, credits: dict[str, int]) -> None:
        stored = self.system.orders(customer_id)
        for handle, order in self.model.orders.items():
            if order.customer != customer_id:
                continue
            order_id = self._order_id(handle)
            found = stored.get(order_id)
            if found is None:
                raise Violation("order", f"{handle} ({order_id}) not in the store")
            got = (found["status"], found["clawed_back_mt"])
            if got != (order.status, order.clawed_back_mt):
                raise Violation(
                    "order",
                    f"{handle}: system {got} != model {(order.status, order.clawed_back_mt)}",
                )
            if credits.get(order_id, 0) != int(order.ever_paid):
                raise Violation(
                    "order credited once, only when paid",
                    f"{handle}: {credits.get(order_id, 0)} credits",
                )
        known = {
            self._order_id(h) for h, o in self.model.orders.items() if o.customer == customer_id
        }
        if set(stored) - known:
            raise Violation(
                "order", f"{customer_id}: orders the model never made: {set(stored) - known}"
            )

    def _check_top_up(self, customer_id: str) -> None:
        t = self.model.customers[customer_id].top_up
        state = self.system.top_up(customer_id)
        in_flight = None if t.in_flight is None else f"atu_{customer_id}_{t.in_flight}"
        expected = {
            "enabled": t.enabled,
            "in_flight": in_flight,
            "failures": t.failures,
            "paused_reason": t.paused,
            "counters": {f"charges_{d}": n for d, n in t.charges.items()}
            | {f"cents_{m}": n for m, n in t.cents.items()},
            "attempts": dict(t.attempts),
        }
        got = {k: state[k] for k in expected if k != "attempts"} | {
            "attempts": {v: a["status"] for v, a in state["attempts"].items()}
        }
        if got != expected:
            diff = {k: (got[k], expected[k]) for k in expected if got[k] != expected[k]}
            raise Violation("auto top-up state", f"{customer_id}: system/model {diff}")
        self._check_caps(customer_id)

    def _check_caps(self, customer_id: str) -> None:
        """What Stripe was asked to charge, counted at Stripe: never more charges a day nor
        cents a month than the largest caps the customer ever set, never while paused."""
        t = self.model.customers[customer_id].top_up
        per_day: dict[str, int] = {}
        per_month: dict[str, int] = {}
        for intent in self.system.payment_intents():
            if intent["metadata"].get("customer_id") != customer_id:
                continue
            moment = time.gmtime(intent["created"])
            day, month = time.strftime("%Y-%m-%d", moment), time.strftime("%Y-%m", moment)
            per_day[day] = per_day.get(day, 0) + 1
            per_month[month] = per_month.get(month, 0) + intent["amount"]
        if any(n > t.largest_per_day for n in per_day.values()):
            raise Violation("auto top-up caps", f"{customer_id}: {per_day} charges a day")
        if any(cents > t.largest_cap_cents for cents in per_month.values()):
            raise Violation("auto top-up caps", f"{customer_id}: {per_month} cents a month")
        charged = sum(per_day.values())
        if t.paused and charged > t.charged_when_paused:
            raise Violation("auto top-up breaker", f"{customer_id}: charged while {t.paused}")

    def check_usage(self) -> None:
        """Usage aggregates = what the model debited, per customer, action and day."""
        for customer_id, c in self.model.customers.items():
            for day in sorted({d for d, _ in c.usage}):
                expected = {a: mt for (d, a), mt in c.usage.items() if d == day and mt}
                got = self.system.usage(customer_id, date.fromisoformat(day))
                if got != expected:
                    detail = f"{customer_id} {day}: {got} != {expected}"
                    raise Violation("usage aggregates", detail)

    # ---- the end of a history ----------------------------------------------------------

    def coverage(self) -> Counter[str]:
        """What the history reached: attempts, orders, holds and entries by kind."""
        seen: Counter[str] = Counter()
        for c in self.model.customers.values():
            seen.update(f"attempt {status}" for status in c.top_up.attempts.values())
            seen.update(f"hold {h.status}" for h in c.holds.values())
            seen.update(f"entry {scope}" for scope, _ in c.entries)
        seen.update(f"order {o.kind} {o.status}" for o in self.model.orders.values())
        return seen + self.model.seen

    def drain(self) -> None:
        """Deliver everything still on its way, no faults, until nothing moves."""
        for round_number in range(12):
            quiet = Step("stream", {"consumer": "both", "seed": round_number, "stripe_faults": []})
            self._do_stream(quiet)
            while self.pending_stripe:
                self._do_stripe_send(Step("stripe_send", {"pick": 0, "redeliver": False}))
            ledger, charger = self.system.stream_records()
            self.pending_ledger += ledger
            self.pending_charger += charger
            if not (self.pending_ledger or self.pending_charger or self.pending_stripe):
                break
        self.check(set(CUSTOMERS))
        self.check_usage()
        code, printed = self.system.reconcile()
        if code != 0:
            raise Violation("make reconcile", printed.strip())


class _Crashed:
    def __init__(self, reason: str = "crashed between the write and the reply") -> None:
        self.reason = reason


def _retried_form(reply: Reply) -> Reply:
    """What a reply may look like when the first call's write landed and a retry answered."""
    shown = {k: v for k, v in reply.items() if k != "replayed"}
    if shown.get("status") == 201:
        shown["status"] = 200
    action = shown.get("action")
    if action in FAMILY_WHEN_RETRIED:
        shown["action"] = FAMILY_WHEN_RETRIED[action]
    return shown


def _debit_reply(reply: dict[str, Any]) -> Reply:
    if not reply["ok"]:
        return {"ok": False, "code": reply["error"]["code"]}
    shown: Reply = {"ok": True}
    for name in (
        "debited_mt",
        "held_mt",
        "released_mt",
        "expires_at",
        "late",
        "renewed",
        "grace_until",
        "replayed",
    ):
        if name in reply:
            shown[name] = reply[name]
    if reply.get("renewed") is False:
        shown.pop("expires_at", None)
    if reply.get("renewed") is True:
        shown.pop("grace_until", None)
    return shown


def _usage(lines: list[list[Any]]) -> list[dict[str, Any]]:
    return [{"action": a, "quantity": q, "vm_id": vm} for a, q, vm in lines]


def _lines(lines: list[list[Any]]) -> list[Line]:
    return [(a, Fraction(q), vm) for a, q, vm in lines]


def _interleave(records: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Records of different customers in another order; each customer's own stay in order
    (DynamoDB Streams orders one item's records, nothing across items)."""
    queues: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        queues.setdefault(System.record_customer(record), []).append(record)
    merged = []
    while queues:
        customer = rng.choice(sorted(queues))
        merged.append(queues[customer].pop(0))
        if not queues[customer]:
            del queues[customer]
    return merged


def run_history(
    system: System, seed: int, steps: int | list[Step], *, faults: bool = True
) -> HistoryResult:
    """One history: generated from the seed (`steps` a count) or replayed (a step list)."""
    started = time.monotonic()
    generator = Generator(seed, faults=faults)
    planned = [s for s in steps if s.kind != "drain"] if isinstance(steps, list) else None
    count = len(planned) if planned is not None else int(steps)  # type: ignore[arg-type]
    result = HistoryResult(seed, [], [])
    crashes_before, faults_before = system.stats.crashes, system.stats.faults_injected
    with system.history(seed):
        runner = Runner(system)
        try:
            for index in range(count):
                step = planned[index] if planned is not None else generator.next_step(runner.model)
                result.steps.append(step)
                result.trace.append(f"{index:5d} {step}")
                runner.step(step)
            result.steps.append(Step("drain"))
            result.trace.append(f"{count:5d} drain")
            runner.drain()
        except Violation as violation:
            result.violation = violation
            result.failed_at = len(result.steps) - 1
        system.disarm()
        result.observed = runner.observed
        result.coverage = runner.coverage()
        result.faults = system.stats.faults_injected - faults_before
        result.crashes = system.stats.crashes - crashes_before
        result.stripe_faults = runner.stripe_faults
        result.retries = runner.retries
    result.seconds = time.monotonic() - started
    return result


def shrink(
    system: System, failed: HistoryResult, *, max_runs: int = 200, max_seconds: float = 120.0
) -> HistoryResult:
    """The shortest history found that still fails the same check: delta debugging over the
    step list (chunks of halving size removed while the failure stays), bounded in runs."""
    assert failed.violation is not None
    assert failed.failed_at is not None
    check = failed.violation.check
    best = failed
    steps = [s for s in failed.steps[: failed.failed_at + 1] if s.kind != "drain"]
    deadline = time.monotonic() + max_seconds
    runs = 0
    chunk = max(len(steps) // 2, 1)
    while chunk >= 1 and runs < max_runs and time.monotonic() < deadline:
        index, removed_any = 0, False
        while index < len(steps) and runs < max_runs and time.monotonic() < deadline:
            candidate = steps[:index] + steps[index + chunk :]
            runs += 1
            result = run_history(system, failed.seed, candidate)
            if result.violation is not None and result.violation.check == check:
                best, removed_any = result, True
                steps = [
                    s for s in result.steps[: (result.failed_at or 0) + 1] if s.kind != "drain"
                ]
            else:
                index += chunk
        if not removed_any:
            chunk //= 2
    return best


def report(result: HistoryResult, shrunk: HistoryResult | None = None) -> str:
    """What a failure prints: the seed, the step, the violation and the shortest history."""
    lines = [
        f"seed {result.seed}: violation at step {result.failed_at}: {result.violation}",
        f"replay: make simulate SEED={result.seed} STEPS={len(result.steps) - 1}",
    ]
    if shrunk is not None and shrunk.violation is not None:
        lines.append(
            f"shortest history that still fails ({len(shrunk.trace)} steps): {shrunk.violation}"
        )
        lines += ["  " + line for line in shrunk.trace]
    return "\n".join(lines)
