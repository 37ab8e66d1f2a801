"""An offline stand-in for the slice of Stripe's API this service uses, at the HTTP layer.

The purchase function talks to it through the official SDK, unchanged (only the SDK's
`api` base address points here), so `make dev` runs a whole checkout on one machine and
tests see the exact parameters the SDK sends. Its events go to the webhook signed the way
Stripe signs them (`local.stripe_wire`).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from local.fake_invoice_api import route_invoice_api
from local.fake_invoices import TEST_CARDS, FakeInvoices, billing_details, tax_lines
from local.stripe_wire import decode_form
from token_billing.domain.catalog import UnknownCatalogItem, get_package

LOCAL_WEBHOOK_SECRET = "whsec_local_development_only"  # noqa: S105 - offline only
LOCAL_SECRET_KEY = "sk_test_local_offline"  # noqa: S105 - offline only
# A fault a test queues for the next charging request (a PaymentIntent, an invoice's
# payment): "timeout" answers after the client gave up (the charge IS made and kept under
# its key, Stripe's worst case); "500" and "429" fail before anything runs (not kept).
FAULTS = frozenset({"timeout", "500", "429"})


def _on(option: Any) -> bool:
    """Whether a `{enabled: true}` option of a request is on (form values are strings)."""
    return isinstance(option, dict) and option.get("enabled") in (True, "true")


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


@dataclass
class FakeStripe:
    """Checkout Sessions in memory, with Stripe's idempotency-key semantics."""

    public_base: str  # where the offline checkout page is served, e.g. http://127.0.0.1:3000
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _idempotent: dict[str, tuple[dict[str, Any], tuple[int, dict[str, Any]]]] = field(
        default_factory=dict
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What this fake refused because the service sent a wrong off-session request.
    violations: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    # Secret keys this fake refuses with Stripe's 401 (a key rolled or revoked in Stripe).
    revoked_keys: set[str] = field(default_factory=set)
    faults_for: str | None = None  # only this customer's PaymentIntents meet the faults
    timeout_sleep_s: float = 2.0
    # Where signed events go (the dev server's webhook route); None: kept in `outbox`.
    webhook_sink: Callable[[str, dict[str, Any]], None] | None = None
    outbox: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # Invoices and charges (with their documents); what each session was created with.
    invoicing: FakeInvoices = field(init=False)
    session_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.invoicing = FakeInvoices(self.public_base)

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: str
    ) -> tuple[int, dict[str, Any]]:
        """One API request (path below /v1, a GET's parameters in its query string);
        returns (status, JSON body)."""
        path, _, query = path.partition("?")
        params = decode_form(body or query) if body or query else {}
        lowered = {name.lower(): value for name, value in headers.items()}
        with self._lock:
            self.requests.append(
                {
                    "method": method,
                    "path": path,
                    "params": params,
                    "idempotency_key": lowered.get("idempotency-key"),
                    "authorization": lowered.get("authorization", ""),
                }
            )
            bearer = lowered.get("authorization", "")
            if not bearer.startswith("Bearer sk_") or bearer.removeprefix("Bearer ") in (
                self.revoked_keys
            ):
                return 401, _error("invalid_request_error", "Invalid API Key provided")
            key = lowered.get("idempotency-key")
            fault = None
            charging = self._charged_metadata(method, path, params)
            faulted = self.faults_for is None or (
                charging is not None and charging.get("customer_id") == self.faults_for
            )
            if charging is not None and self.faults and faulted:
                fault = self.faults.pop(0)
                assert fault in FAULTS, fault
                if fault == "500":
                    return 500, _error("api_error", "Injected server error (Stripe-Should-Retry)")
                if fault == "429":
                    return 429, _error("rate_limit_error", "Injected rate limit")
            if method == "POST" and key and key in self._idempotent:
                first_params, response = self._idempotent[key]
                if first_params != params:
                    return 400, _error(
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters",
                    )
                return response
            response = self._route(method, path, params, key)
            if method == "POST" and key:
                self._idempotent[key] = (params, response)
        if fault == "timeout":
            time.sleep(self.timeout_sleep_s)  # outside the lock: the client has given up
        return response

    def _charged_metadata(
        self, method: str, path: str, params: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The metadata of what a charging request (an off-session PaymentIntent, an
        invoice's payment) bills; None for any other request. Faults meet these."""
        if method == "POST" and path == "/v1/payment_intents":
            return dict(params.get("metadata") or {})
        paying = re.fullmatch(r"/v1/invoices/([\w-]+)/pay", path)
        invoice = self.invoicing.invoices.get(paying.group(1)) if paying else None
        return dict(invoice["metadata"]) if method == "POST" and invoice else None

    def _route(
        self, method: str, path: str, params: dict[str, Any], key: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        if method == "POST" and path == "/v1/checkout/sessions":
            return 200, self._create_session(params)
        if method == "POST" and path == "/v1/customers":
            return 200, self._new_customer(params.get("metadata", {}))
        if method == "POST" and path == "/v1/payment_intents":
            return self._off_session_payment(params, key)
        detach = re.fullmatch(r"/v1/payment_methods/([\w-]+)/detach", path)
        if method == "POST" and detach and detach.group(1) in self.payment_methods:
            pm = self.payment_methods[detach.group(1)]
            pm["customer"] = None
            self.emit("payment_method.detached", dict(pm))
            return 200, pm
        if method == "GET" and path == "/v1/payment_intents/search":
            return 200, self.search(self.payment_intents.values(), str(params.get("query", "")))
        expire = re.fullmatch(r"/v1/checkout/sessions/([\w-]+)/expire", path)
        if method == "POST" and expire and expire.group(1) in self.sessions:
            return self._expire_session(self.sessions[expire.group(1)])
        found_pi = re.fullmatch(r"/v1/payment_intents/([\w-]+)", path)
        if method == "GET" and found_pi and found_pi.group(1) in self.payment_intents:
            return 200, self.payment_intents[found_pi.group(1)]
        invoice_answer = route_invoice_api(self, method, path, params, key)
        if invoice_answer is not None:
            return invoice_answer
        found_in = re.fullmatch(r"/v1/invoices/([\w-]+)", path)
        if method == "GET" and found_in and found_in.group(1) in self.invoicing.invoices:
            return 200, self.invoicing.invoices[found_in.group(1)]
        found = re.fullmatch(r"/v1/checkout/sessions/([\w-]+)", path)
        if method == "GET" and found and found.group(1) in self.sessions:
            return 200, self.sessions[found.group(1)]
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method} {path})")

    def _new_customer(self, metadata: dict[str, Any]) -> dict[str, Any]:
        customer_id = "cus_local_" + secrets.token_hex(8)
        customer: dict[str, Any] = {
            "id": customer_id,
            "object": "customer",
            "created": int(time.time()),
            "livemode": False,
            "metadata": metadata,
            "name": None,
            "email": None,
            "address": None,
            "tax_ids": [],  # Stripe lists them apart (GET /v1/customers/{id}/tax_ids)
        }
        self.customers[customer_id] = customer
        return customer

    def search(self, objects: Iterable[dict[str, Any]], query: str) -> dict[str, Any]:
        """Stripe's search, for the one form the service sends: metadata['<key>']:'<value>'."""
        found = re.fullmatch(r"metadata\['(\w+)'\]:'([^']*)'", query)
        if found is None:
            return _error("invalid_request_error", f"this fake searches no {query!r}")
        key, value = found.groups()
        data = [obj for obj in objects if obj["metadata"].get(key) == value]
        return {"object": "search_result", "data": data, "has_more": False, "url": "/v1/search"}

    def _expire_session(self, session: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if session["status"] != "open":
            message = "Only Checkout Sessions with a status in [open] can be expired"
            return 400, _error("invalid_request_error", message)
        session["status"] = "expired"
        self.emit("checkout.session.expired", dict(session))
        return 200, session

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        session_id = "cs_test_" + secrets.token_hex(16)
        amount = 0
        currency = None
        for line in params.get("line_items", []):
            price_data = line.get("price_data") or {}
            amount += _int(price_data.get("unit_amount")) * _int(line.get("quantity") or 1)
            currency = price_data.get("currency", currency)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "customer": params.get("customer"),
            "setup_future_usage": (params.get("payment_intent_data") or {}).get(
                "setup_future_usage"
            ),
            "created": int(time.time()),
            "currency": currency,
            "expires_at": _int(params.get("expires_at")) or int(time.time()) + 86_400,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "mode": params.get("mode"),
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "url": f"{self.public_base}/_local/checkout/{session_id}",
            "automatic_tax": {"enabled": _on(params.get("automatic_tax")), "status": None},
            "billing_address_collection": params.get("billing_address_collection"),
            "customer_details": None,
            "invoice": None,
            "invoice_creation": {"enabled": _on(params.get("invoice_creation"))},
            "tax_id_collection": {"enabled": _on(params.get("tax_id_collection"))},
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        }
        self.sessions[session_id] = session
        self.session_params[session_id] = params
        return session

    def pay(
        self, session_id: str, card: str = "pm_card_visa", billing: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """What paying on Stripe's page does to a session: complete and paid, with the
        buyer's billing details (`billing`, the page's form) and the tax for their address;
        a charge with its receipt; with `invoice_creation`, a Customer when the session has
        none and a paid invoice. A session that saves the card (`setup_future_usage`)
        attaches a payment method made from the test card to its customer. Stripe's events
        (`charge.succeeded`, `invoice.*`, `payment_method.attached`) go to the outbox."""
        with self._lock:
            session = self.sessions[session_id]
            if session["status"] == "open":
                self._complete(session, self.session_params[session_id], card, billing)
            return dict(session)

    def _complete(
        self,
        session: dict[str, Any],
        params: dict[str, Any],
        card: str,
        billing: dict[str, str] | None,
    ) -> None:
        details = billing_details(billing)
        subtotal = int(session["amount_subtotal"])
        taxes = tax_lines(session["automatic_tax"]["enabled"], details["address"], subtotal)
        tax = sum(int(line["amount"]) for line in taxes)
        session.update(
            status="complete",
            payment_status="paid",
            payment_intent="pi_local_" + secrets.token_hex(12),
            customer_details=details,
            amount_total=subtotal + tax,
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": tax},
        )
        customer = self._checkout_customer(session, params, details)
        if customer and session.get("setup_future_usage"):
            self.attach_test_card(str(customer["id"]), card)
        metadata = (params.get("payment_intent_data") or {}).get("metadata") or {}
        charge = self.invoicing.charge(
            amount=subtotal + tax,
            currency=str(session["currency"]),
            customer=customer["id"] if customer else None,
            payment_intent=str(session["payment_intent"]),
            card={k: v for k, v in TEST_CARDS[card].items() if k != "outcome"},
            metadata=metadata,
        )
        self.emit("charge.succeeded", dict(charge))
        if session["invoice_creation"]["enabled"] and customer is not None:
            invoice = self.invoicing.for_checkout(session, params, customer)
            session["invoice"] = invoice["id"]
            self.emit("invoice.finalized", dict(invoice))
            self.emit("invoice.paid", dict(invoice))

    def _checkout_customer(
        self, session: dict[str, Any], params: dict[str, Any], details: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The session's Customer: its own, or one created for its invoice (Checkout's
        `customer_creation: if_required`), keeping the billing details Checkout may save."""
        customer = self.customers.get(str(session.get("customer")))
        if customer is None and session["invoice_creation"]["enabled"]:
            customer = self._new_customer({})
            customer.update(email=details["email"])
            session["customer"] = customer["id"]
            params = {**params, "customer_update": {"name": "auto", "address": "auto"}}
        if customer is not None:
            update = params.get("customer_update") or {}
            if update.get("name") == "auto":
                customer.update(name=details["name"], tax_ids=details["tax_ids"])
            if update.get("address") == "auto":
                customer.update(address=details["address"])
            customer["email"] = customer.get("email") or details["email"]
        return customer

    def attach_test_card(self, customer: str, card: str) -> dict[str, Any]:
        """A payment method made from one of Stripe's test cards, attached to a customer."""
        test = TEST_CARDS[card]
        pm_id = f"pm_local_{secrets.token_hex(8)}"
        pm: dict[str, Any] = {
            "id": pm_id,
            "object": "payment_method",
            "type": "card",
            "created": int(time.time()),
            "customer": customer,
            "livemode": False,
            "metadata": {},
            "card": {
                "brand": test["brand"],
                "last4": test["last4"],
                "exp_month": 12,
                "exp_year": 2034,
                "funding": "credit",
                "country": "US",
            },
            "test_card": card,  # this fake's own field: what a charge with it does
        }
        self.payment_methods[pm_id] = pm
        self.emit("payment_method.attached", {k: v for k, v in pm.items() if k != "test_card"})
        return pm

    def violation(self, message: str) -> tuple[int, dict[str, Any]]:
        self.violations.append(message)
        return 400, _error("invalid_request_error", message)

    def _off_session_payment(
        self, params: dict[str, Any], key: str | None
    ) -> tuple[int, dict[str, Any]]:
        """An off-session, confirmed PaymentIntent, checked the way the service must send it:
        an idempotency key, off_session and confirm, the customer's own saved card, and the
        amount the catalog gives for the packs it names."""
        metadata = params.get("metadata") or {}
        if not key:
            return self.violation("an off-session charge needs an idempotency key")
        if params.get("off_session") != "true" or params.get("confirm") != "true":
            return self.violation("auto top-up must send off_session=true and confirm=true")
        customer = params.get("customer")
        pm = self.payment_methods.get(str(params.get("payment_method")))
        if customer not in self.customers or pm is None or pm["customer"] != customer:
            return self.violation("payment_method is not attached to this customer")
        try:
            price = get_package(str(metadata.get("package_id"))).price_cents
            expected = price * int(metadata.get("packs") or 0)
        except (UnknownCatalogItem, ValueError):
            return self.violation("metadata must name the package and the packs")
        if _int(params.get("amount")) != expected or expected <= 0:
            return self.violation(f"amount {params.get('amount')} is not the catalog's {expected}")
        intent_id = "pi_local_" + secrets.token_hex(12)
        amount = _int(params.get("amount"))
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": params.get("currency"),
            "customer": customer,
            "payment_method": pm["id"],
            "metadata": metadata,
            "created": int(time.time()),
            "livemode": False,
            "setup_future_usage": None,
            "last_payment_error": None,
            "latest_charge": None,
        }
        outcome = TEST_CARDS[pm["test_card"]]["outcome"]
        self.payment_intents[intent_id] = intent
        if outcome == "succeeded":
            charge = self.invoicing.charge(
                amount=amount,
                currency=str(intent["currency"]),
                customer=customer,
                payment_intent=intent_id,
                card=pm["card"],
                metadata=metadata,
            )
            intent.update(status="succeeded", amount_received=amount, latest_charge=charge["id"])
            self.emit("payment_intent.succeeded", dict(intent))
            self.emit("charge.succeeded", dict(charge))
            return 200, intent
        intent["status"] = "requires_payment_method"
        decline = "generic_decline" if outcome == "card_declined" else outcome
        error = {
            "type": "card_error",
            "code": outcome,
            "decline_code": decline,
            "message": (
                "Your card was declined."
                if outcome == "card_declined"
                else "Your card requires authentication."
            ),
            "payment_intent": dict(intent),
        }
        intent["last_payment_error"] = {k: v for k, v in error.items() if k != "payment_intent"}
        self.emit("payment_intent.payment_failed", dict(intent))
        return 402, {"error": error}

    def emit(self, event_type: str, obj: dict[str, Any]) -> None:
        # Called under the lock; delivered by `flush`, after the API answer, as Stripe does.
        self.outbox.append((event_type, obj))

    def take_events(self) -> list[tuple[str, dict[str, Any]]]:
        """The queued events, taken undelivered (tests deliver them in orders of their own)."""
        with self._lock:
            pending, self.outbox = self.outbox, []
        return pending

    def flush(self) -> int:
        """Deliver the queued events to the webhook sink, oldest first; how many went."""
        with self._lock:
            pending, self.outbox = self.outbox, []
        if self.webhook_sink is None:
            with self._lock:
                self.outbox[:0] = pending
            return 0
        for event_type, obj in pending:
            self.webhook_sink(event_type, obj)
        return len(pending)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}
