"""The dev server's own pages, which no deployment has: the API's OpenAPI document, the fake
Stripe API and its offline checkout pages, the development sign-in, the JWKS of its tokens
and the VM agent credential mint."""

from __future__ import annotations

import ipaddress
import json
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from local import identity, invoice_documents, offline_checkout
from local.apigw import JSON_HEADERS, HttpResponse
from local.fake_invoices import TEST_CARDS
from local.fake_stripe import FakeStripe
from local.template import ROOT
from token_billing.domain.agent_credentials import CREDENTIAL_TTL_DEFAULT_S
from tools import agent_credential

CHECKOUT_PAGE = re.compile(r"^/_local/checkout/(?P<id>[\w-]+)(?:/(?P<action>pay|cancel))?$")
INVOICE_PAGE = re.compile(r"^/_local/invoices/(?P<id>[\w-]+)(?P<pdf>/pdf)?$")
RECEIPT_PAGE = re.compile(r"^/_local/receipts/(?P<id>[\w-]+)$")
HTML_HEADERS = [("Content-Type", "text/html; charset=utf-8")]
BILLING_FIELDS = ("name", "email", "line1", "city", "postal_code", "country", "tax_id")
SIGN_IN_PATH = "/_local/identity/token"
AGENT_CREDENTIAL_PATH = "/_local/agent-credential"
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Where these pages live: the HTTP router asks them first for these path prefixes.
LOCAL_PAGE_PREFIXES = ("/_stripe/", "/_local/", "/openapi.json")

DeliverStripeEvent = Callable[[str, dict[str, Any]], None]  # (event type, object) -> None


def api_error(status: int, code: str, message: str) -> HttpResponse:
    """The API's one error shape, for the dev server's own endpoints."""
    body = {"error": {"code": code, "message": message, "retryable": False}}
    return HttpResponse(status, JSON_HEADERS, json.dumps(body).encode())


def is_loopback(host: str) -> bool:
    """Whether `host` (an address the server binds) only accepts this machine's clients."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LocalPages:
    """The local pages of one dev server. The sign-in, the JWKS and the credential mint
    answer only while the server binds loopback: they hand out credentials to anyone."""

    def __init__(
        self, fake_stripe: FakeStripe, deliver_stripe_event: DeliverStripeEvent, *, loopback: bool
    ) -> None:
        self.fake_stripe = fake_stripe
        self.deliver_stripe_event = deliver_stripe_event  # a paid checkout's webhook
        self.loopback = loopback

    def serve(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> HttpResponse | None:
        """The local page at `path`, or None when there is none (the router goes on)."""
        if path == SIGN_IN_PATH and method == "POST":
            return self.mint_identity_token(body)
        if path == identity.JWKS_PATH and method == "GET" and self.loopback:
            return HttpResponse(200, JSON_HEADERS, json.dumps(identity.jwks()).encode())
        if path == AGENT_CREDENTIAL_PATH and method == "POST":
            return self.mint_agent_credential(body)
        if path == "/openapi.json" and method == "GET":
            document = (ROOT / "openapi.json").read_bytes()
            return HttpResponse(200, JSON_HEADERS, document)
        if path.startswith("/_stripe/"):
            return self.serve_fake_stripe(method, path, headers, body)
        if method == "GET" and (INVOICE_PAGE.match(path) or RECEIPT_PAGE.match(path)):
            return self.serve_document(path)
        return self.serve_checkout_page(method, path, body)

    def serve_document(self, path: str) -> HttpResponse | None:
        """An invoice's page or PDF, or a charge's receipt, as the fake Stripe made them."""
        invoicing = self.fake_stripe.invoicing
        found = INVOICE_PAGE.match(path)
        if found and found["id"] in invoicing.invoices:
            invoice = invoicing.invoices[found["id"]]
            if found["pdf"]:
                name = f"Invoice-{invoice.get('number') or invoice['id']}.pdf"
                headers = [
                    ("Content-Type", "application/pdf"),
                    ("Content-Disposition", f'inline; filename="{name}"'),
                ]
                return HttpResponse(200, headers, invoice_documents.render_invoice_pdf(invoice))
            page = invoice_documents.render_invoice_html(invoice)
            return HttpResponse(200, HTML_HEADERS, page.encode())
        found = RECEIPT_PAGE.match(path)
        if found and found["id"] in invoicing.charges:
            page = invoice_documents.render_receipt_html(invoicing.charges[found["id"]])
            return HttpResponse(200, HTML_HEADERS, page.encode())
        return None

    def serve_fake_stripe(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> HttpResponse:
        """The fake Stripe API under `/_stripe/`, where STRIPE_API_BASE points offline."""
        status, payload = self.fake_stripe.handle(
            method, path.removeprefix("/_stripe"), dict(headers), body.decode()
        )
        if self.fake_stripe.outbox:  # its webhooks follow the answer, as Stripe's do
            threading.Timer(0.05, self.fake_stripe.flush).start()
        return HttpResponse(status, JSON_HEADERS, json.dumps(payload).encode())

    def serve_checkout_page(self, method: str, path: str, body: bytes) -> HttpResponse | None:
        """The offline Checkout page of a fake Stripe session, and its Pay and Cancel
        buttons: Pay sends the webhook a signed checkout.session.completed first."""
        found = CHECKOUT_PAGE.match(path)
        if not found or found["id"] not in self.fake_stripe.sessions:
            return None
        session_id, action = found["id"], found["action"]
        session = self.fake_stripe.sessions[session_id]
        if method == "GET" and not action:
            page = offline_checkout.render(session)
            return HttpResponse(200, HTML_HEADERS, page.encode())
        if method == "POST" and action == "pay":
            form = {name: values[0] for name, values in parse_qs(body.decode()).items()}
            card = form.get("card", "pm_card_visa")
            billing = {name: form[name] for name in BILLING_FIELDS if name in form}
            paid = self.fake_stripe.pay(
                session_id,
                card=card if card in TEST_CARDS else "pm_card_visa",
                billing=billing or dict(offline_checkout.DEFAULT_BILLING),
            )
            self.deliver_stripe_event("checkout.session.completed", paid)
            # The charge and invoice events, and payment_method.attached when the card was saved
            self.fake_stripe.flush()
            target = str(paid["success_url"]).replace("{CHECKOUT_SESSION_ID}", session_id)
            return HttpResponse(303, [("Location", target)])
        if method == "POST" and action == "cancel":
            return HttpResponse(303, [("Location", str(session["cancel_url"]))])
        return None

    def mint_agent_credential(self, body: bytes) -> HttpResponse:
        """`POST /_local/agent-credential` `{customer_id, vm_id, ttl_s?}` -> the credential
        the control plane would hand that VM's agent (`tools.agent_credential`). Loopback
        only, like the development sign-in."""
        if not self.loopback:
            return api_error(403, "forbidden", "agent credentials are only minted on loopback")
        try:
            request = json.loads(body or b"{}")
            minted = agent_credential.mint(
                str(request["customer_id"]),
                str(request["vm_id"]),
                ttl_s=int(request.get("ttl_s", CREDENTIAL_TTL_DEFAULT_S)),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return api_error(400, "invalid_request", "send {customer_id, vm_id, ttl_s?}")
        return HttpResponse(200, JSON_HEADERS, json.dumps(minted).encode())

    def mint_identity_token(self, body: bytes) -> HttpResponse:
        """`POST /_local/identity/token` `{customer_id}` or `{admin: true}` -> `{token}`: the
        web app's sign-in on the dev server, a token from the development identity
        (`local.identity`). Dev only: answered only while the server binds loopback."""
        if not self.loopback:
            return api_error(403, "forbidden", "development sign-in is only served on loopback")
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return api_error(400, "invalid_request", "the body must be JSON")
        if not isinstance(request, dict) or set(request) - {"customer_id", "admin"}:
            return api_error(400, "invalid_request", "send {customer_id} or {admin: true}")
        customer_id, admin = request.get("customer_id"), request.get("admin", False)
        if customer_id is not None and (
            not isinstance(customer_id, str) or not CUSTOMER_ID.match(customer_id)
        ):
            return api_error(400, "invalid_request", "customer_id: letters, digits, _ and -")
        if not isinstance(admin, bool) or (customer_id is None and not admin):
            return api_error(400, "invalid_request", "send {customer_id} or {admin: true}")
        token = identity.mint(customer_id=customer_id, admin=admin)
        return HttpResponse(200, JSON_HEADERS, json.dumps({"token": token}).encode())
