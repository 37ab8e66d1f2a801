"""The offline checkout page `make dev` serves in place of Stripe's hosted page."""

from __future__ import annotations

import html
from typing import Any

TEST_CARD_LABELS = {
    "pm_card_visa": "Visa 4242 (succeeds)",
    "pm_card_chargeDeclined": "Visa 0002 (declines off-session)",
    "pm_card_authenticationRequired": "Visa 3184 (needs authentication off-session)",
}


def _card_choice(session: dict[str, Any]) -> str:
    """When Checkout saves the card, which of Stripe's test cards to save."""
    if not session.get("setup_future_usage"):
        return ""
    options = "".join(
        f'<option value="{card}">{html.escape(label)}</option>'
        for card, label in TEST_CARD_LABELS.items()
    )
    return (
        '<p><label>Card to save for auto top-up <select name="card" aria-label="Test card">'
        f"{options}</select></label></p>"
    )


# What the billing form holds unless the buyer types otherwise: the page pays with one click.
DEFAULT_BILLING = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "line1": "12 Analytical Row",
    "city": "London",
    "postal_code": "EC1A 1BB",
    "country": "GB",
}
COUNTRIES = {"GB": "United Kingdom", "US": "United States", "DE": "Germany", "FR": "France"}


def _billing_fields(session: dict[str, Any]) -> str:
    """The billing address (and tax ID) Checkout collects for the invoice and the tax."""
    if session.get("billing_address_collection") != "required":
        return ""

    def field(name: str, label: str, kind: str = "text") -> str:
        value = html.escape(DEFAULT_BILLING.get(name, ""))
        return (
            f'<p><label>{label} <input name="{name}" type="{kind}" value="{value}" '
            f'aria-label="{label}"></label></p>'
        )

    countries = "".join(
        f'<option value="{code}"{" selected" if code == DEFAULT_BILLING["country"] else ""}>'
        f"{html.escape(name)}</option>"
        for code, name in COUNTRIES.items()
    )
    tax_id = (
        field("tax_id", "Tax ID") if (session.get("tax_id_collection") or {}).get("enabled") else ""
    )
    taxed = (
        "<p>Tax is added for the billing address (this offline Stripe taxes a German "
        "address at 19% VAT, no other).</p>"
        if (session.get("automatic_tax") or {}).get("enabled")
        else ""
    )
    return (
        "<fieldset><legend>Billing details</legend>"
        + field("name", "Name")
        + field("email", "Email", "email")
        + field("line1", "Address")
        + field("city", "City")
        + field("postal_code", "Postal code")
        + '<p><label>Country <select name="country" aria-label="Country">'
        + countries
        + "</select></label></p>"
        + tax_id
        + taxed
        + "</fieldset>"
    )


def render(session: dict[str, Any]) -> str:
    metadata = session.get("metadata") or {}
    amount = int(session.get("amount_total") or 0)
    currency = str(session.get("currency") or "usd").upper()
    base = f"/_local/checkout/{html.escape(str(session['id']))}"
    done = session.get("status") != "open"
    state = "Paid" if done else "Awaiting payment"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Offline checkout</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto;
        padding: 0 1rem; }}
 .card {{ border: 1px solid #ccc; border-radius: 8px; padding: 1.5rem; }}
 button {{ font-size: 1rem; padding: .6rem 1.2rem; margin-right: .5rem; }}
</style></head>
<body><main class="card">
<h1>Offline checkout</h1>
<p>This page stands in for Stripe's hosted checkout on the dev server. Paying sends the
webhook a <code>checkout.session.completed</code> event signed with the local webhook secret.</p>
<dl>
 <dt>Package</dt><dd id="package">{html.escape(str(metadata.get("package_id", "")))}</dd>
 <dt>Amount</dt><dd id="amount">{amount // 100}.{amount % 100:02d} {html.escape(currency)}</dd>
 <dt>Invoice</dt><dd id="invoice">{html.escape(str(session.get("invoice") or "none"))}</dd>
 <dt>Order</dt><dd id="order">{html.escape(str(metadata.get("order_id", "")))}</dd>
 <dt>Status</dt><dd id="status">{state}</dd>
</dl>
<form method="post" action="{base}/pay" style="display:inline">
{_billing_fields(session)}
{_card_choice(session)}
 <button type="submit" aria-label="Pay" {"disabled" if done else ""}>Pay</button></form>
<form method="post" action="{base}/cancel" style="display:inline">
 <button type="submit" aria-label="Cancel and go back">Cancel</button></form>
</main></body></html>
"""
