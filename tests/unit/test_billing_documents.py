"""Invoices, receipts and tax without a table: what Checkout is asked for, what a paid
session or invoice says was paid (and when it does not add up), how Stripe's answers about
invoices are classified, and the offline Stripe's fixed tax."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from local.fake_invoices import tax_lines
from token_billing.domain.auto_top_up.webhooks import invoice_amounts
from token_billing.domain.billing_documents import invoice_tax_cents
from token_billing.domain.billing_settings import (
    BillingSettings,
    checkout_document_params,
    grouped_tokens,
)
from token_billing.domain.payments import session_amounts
from token_billing.integrations.stripe_gateway import _answer
from token_billing.store.order_records import PaidAmounts

METADATA = {"customer_id": "cust_1", "order_id": "ord_1", "package_id": "growth"}


@pytest.mark.parametrize(
    ("amount_mt", "shown"),
    [(6_500_000, "6,500"), (19_500_000, "19,500"), (500, "0.5"), (1_234_567_500, "1,234,567.5")],
)
def test_tokens_are_written_for_a_reader(amount_mt: int, shown: str) -> None:
    assert grouped_tokens(amount_mt) == shown


def test_checkout_asks_for_exactly_what_the_operator_turned_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("STRIPE_INVOICES", "STRIPE_TAX", "COLLECT_TAX_IDS"):
        monkeypatch.delenv(name, raising=False)
    assert BillingSettings.from_environment() == BillingSettings(True, False, False)
    off = BillingSettings(invoices=False)
    assert checkout_document_params(off, metadata=METADATA, total_mt=1, has_customer=True) == {}
    everything = checkout_document_params(
        BillingSettings(invoices=True, stripe_tax=True, collect_tax_ids=True),
        metadata=METADATA,
        total_mt=6_500_000,
        has_customer=True,
    )
    assert everything == {
        "billing_address_collection": "required",
        "invoice_creation": {
            "enabled": True,
            "invoice_data": {
                "metadata": METADATA,
                "custom_fields": [{"name": "Tokens", "value": "6,500"}],
            },
        },
        "tax_id_collection": {"enabled": True},
        "automatic_tax": {"enabled": True},
        "customer_update": {"name": "auto", "address": "auto"},
    }
    guest = checkout_document_params(
        BillingSettings(), metadata=METADATA, total_mt=6_500_000, has_customer=False
    )
    assert "customer_update" not in guest  # Stripe refuses it without a customer


def session(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "amount_subtotal": 4_900,
        "amount_total": 5_831,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 931},
    }
    return {**base, **fields}


def test_a_paid_sessions_amounts_add_up_or_are_refused() -> None:
    assert session_amounts(session()) == PaidAmounts(4_900, 931, 5_831)
    assert session_amounts(session(amount_total=5_000)) is None
    discounted = {"amount_discount": 931, "amount_shipping": 0, "amount_tax": 931}
    assert session_amounts(session(amount_total=4_900, total_details=discounted)) is None
    assert session_amounts(session(amount_total="5831")) is None
    negative = {"amount_discount": 0, "amount_shipping": 0, "amount_tax": -100}
    assert session_amounts(session(amount_total=4_800, total_details=negative)) is None
    untaxed = {"amount_subtotal": 1_900, "amount_total": 1_900, "total_details": None}
    assert session_amounts(untaxed) == PaidAmounts(1_900, 0, 1_900)


def test_an_invoices_tax_is_read_from_whichever_field_its_api_version_has() -> None:
    assert invoice_tax_cents({"total_taxes": [{"amount": 500}, {"amount": 431}]}) == 931
    assert invoice_tax_cents({"total_taxes": [], "total": 4_900}) == 0
    assert invoice_tax_cents({"tax": 12}) == 12
    assert invoice_tax_cents({"total": 5_831, "total_excluding_tax": 4_900}) == 931
    assert invoice_tax_cents({}) is None


def test_a_paid_invoices_amounts_add_up_and_were_paid_in_full_or_are_refused() -> None:
    paid = {
        "subtotal": 4_900,
        "total": 5_831,
        "amount_paid": 5_831,
        "total_taxes": [{"amount": 931}],
    }
    assert invoice_amounts(paid) == PaidAmounts(4_900, 931, 5_831)
    assert invoice_amounts({**paid, "amount_paid": 100}) is None  # not paid in full
    assert invoice_amounts({**paid, "total": 4_000}) is None  # a discount, or a forgery
    assert invoice_amounts({**paid, "subtotal": None}) is None


def test_the_offline_stripe_taxes_only_a_taxed_address_when_automatic_tax_is_on() -> None:
    german = {"country": "DE"}
    assert [line["amount"] for line in tax_lines(True, german, 4_900)] == [931]
    assert [line["amount"] for line in tax_lines(True, german, 1_950)] == [371]  # 370.5 up
    assert tax_lines(False, german, 4_900) == []
    assert tax_lines(True, {"country": "US"}, 4_900) == []
    assert tax_lines(True, None, 4_900) == []


def _raising(error: Exception) -> Any:
    def send() -> Any:
        raise error

    return send


def stripe_error(kind: str, code: str | None, http_status: int | None = None) -> Exception:
    """One of the SDK's errors, as it raises them (its constructors are untyped)."""
    error_class: Any = getattr(stripe, kind)
    error: Exception = error_class("Stripe said no", None, code=code, http_status=http_status)
    return error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (stripe_error("CardError", "card_declined", 402), "declined"),
        (stripe_error("CardError", "authentication_required", 402), "authentication_required"),
        (
            stripe_error("InvalidRequestError", "invoice_payment_intent_requires_action", 400),
            "authentication_required",
        ),
        (stripe_error("InvalidRequestError", "resource_missing", 404), "failed"),
        (stripe_error("APIError", None, 500), "retryable"),
        (stripe_error("RateLimitError", "rate_limit", 429), "retryable"),
        (stripe_error("AuthenticationError", None, 401), "provider_auth_failed"),
    ],
)
def test_stripes_errors_mean_the_same_for_an_invoice_as_for_a_payment_intent(
    error: Exception, status: str
) -> None:
    reply, failure = _answer(_raising(error))
    assert reply is None
    assert failure is not None
    assert failure.status == status
