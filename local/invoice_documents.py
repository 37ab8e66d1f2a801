"""The offline Stripe's documents: an invoice's hosted page and its PDF, a charge's receipt
page. Stand-ins for Stripe's own (`hosted_invoice_url`, `invoice_pdf`, `receipt_url`) so a
buyer on `make dev` can open and download what a buyer in production gets from Stripe.

The PDF is made with fpdf2 (pinned in requirements/dev.txt, never in the Lambda layer: in
AWS, Stripe makes the invoices). Its core fonts are Latin-1, so other characters print as
"?" on the PDF; the HTML pages show them as typed.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fpdf import FPDF

from local.fake_invoices import TAX_RATES_BY_ID

CURRENCY_SIGNS = {"usd": "$", "eur": "€", "gbp": "£"}


def money(cents: int, currency: str) -> str:
    """Cents as a buyer reads them: 4900 usd -> '$49.00'."""
    sign = CURRENCY_SIGNS.get(currency.lower())
    amount = f"{abs(cents) // 100:,}.{abs(cents) % 100:02d}"
    prefix = "-" if cents < 0 else ""
    return f"{prefix}{sign}{amount}" if sign else f"{prefix}{amount} {currency.upper()}"


def _date(epoch_s: object) -> str:
    if not isinstance(epoch_s, int):
        return ""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%B %d, %Y")


def buyer_lines(invoice: Mapping[str, Any]) -> list[str]:
    """Who the invoice bills: name, e-mail, address lines, tax IDs."""
    address = invoice.get("customer_address") or {}
    city = " ".join(filter(None, [address.get("postal_code"), address.get("city")]))
    lines = [
        invoice.get("customer_name"),
        invoice.get("customer_email"),
        address.get("line1"),
        address.get("line2"),
        city,
        address.get("country"),
    ]
    for tax_id in invoice.get("customer_tax_ids") or []:
        lines.append(f"Tax ID ({tax_id.get('type')}): {tax_id.get('value')}")
    return [str(line) for line in lines if line]


def tax_rows(invoice: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, amount) for each tax the invoice bills."""
    rows = []
    for tax in invoice.get("total_taxes") or []:
        rate = TAX_RATES_BY_ID.get(str((tax.get("tax_rate_details") or {}).get("tax_rate")))
        label = f"{rate.display_name} ({rate.percent}%)" if rate else "Tax"
        rows.append((label, money(int(tax["amount"]), invoice["currency"])))
    return rows


def line_rows(invoice: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(description, quantity, unit price, amount) for each line."""
    currency = invoice["currency"]
    rows = []
    for line in invoice["lines"]["data"]:
        unit = int((line.get("pricing") or {}).get("unit_amount_decimal") or 0)
        rows.append(
            (
                str(line.get("description") or ""),
                str(line.get("quantity") or 1),
                money(unit, currency),
                money(int(line["amount"]), currency),
            )
        )
    return rows


def summary_rows(invoice: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Subtotal, each tax, total and what was paid."""
    currency = invoice["currency"]
    return [
        ("Subtotal", money(int(invoice["subtotal"]), currency)),
        *tax_rows(invoice),
        ("Total", money(int(invoice["total"]), currency)),
        ("Amount paid", money(int(invoice["amount_paid"]), currency)),
    ]


def facts(invoice: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The invoice's heading facts: number, dates, status, its custom fields."""
    transitions = invoice.get("status_transitions") or {}
    found = [
        ("Invoice number", str(invoice.get("number") or "draft")),
        ("Date of issue", _date(transitions.get("finalized_at") or invoice.get("created"))),
        ("Status", str(invoice.get("status"))),
    ]
    if transitions.get("paid_at"):
        found.append(("Paid on", _date(transitions["paid_at"])))
    for custom in invoice.get("custom_fields") or []:
        found.append((str(custom.get("name")), str(custom.get("value"))))
    return found


def render_invoice_html(invoice: Mapping[str, Any]) -> str:
    """The invoice's hosted page."""
    e = html.escape
    fact_rows = "".join(f"<dt>{e(name)}</dt><dd>{e(value)}</dd>" for name, value in facts(invoice))
    buyer = "<br>".join(e(line) for line in buyer_lines(invoice))
    lines = "".join(
        f"<tr><td>{e(d)}</td><td>{e(q)}</td><td>{e(u)}</td><td>{e(a)}</td></tr>"
        for d, q, u, a in line_rows(invoice)
    )
    totals = "".join(
        f'<tr><th colspan="3">{e(name)}</th><td>{e(value)}</td></tr>'
        for name, value in summary_rows(invoice)
    )
    pdf = e(str(invoice.get("invoice_pdf") or ""))
    seller = e(str(invoice.get("account_name")))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Invoice {e(str(invoice.get("number") or ""))}</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto;
        padding: 0 1rem; }}
 table {{ width: 100%; border-collapse: collapse; }} td, th {{ padding: .3rem; text-align: left; }}
 dt {{ font-weight: 600; }} dd {{ margin: 0 0 .4rem; }}
</style></head>
<body><main>
<h1>Invoice</h1>
<p>This page stands in for Stripe's hosted invoice on the dev server.</p>
<section aria-label="Seller"><h2>From</h2><p id="seller">{seller}</p></section>
<section aria-label="Bill to"><h2>Bill to</h2><p id="bill-to">{buyer}</p></section>
<dl id="facts">{fact_rows}</dl>
<table id="lines"><thead><tr><th>Description</th><th>Qty</th><th>Unit price</th><th>Amount</th>
</tr></thead><tbody>{lines}</tbody><tfoot>{totals}</tfoot></table>
<p><a href="{pdf}" download>Download invoice PDF</a></p>
</main></body></html>
"""


def _latin1(text: str) -> str:
    return text.encode("latin-1", errors="replace").decode("latin-1")


def render_invoice_pdf(invoice: Mapping[str, Any]) -> bytes:
    """The invoice as a PDF: seller, buyer, facts, lines, totals."""
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"Invoice {invoice.get('number') or ''}"))
    pdf.set_author(_latin1(str(invoice.get("account_name"))))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, "Invoice", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for name, value in facts(invoice):
        pdf.cell(0, 6, _latin1(f"{name}: {value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    _block(pdf, "From", [str(invoice.get("account_name"))])
    _block(pdf, "Bill to", buyer_lines(invoice))
    widths = (95, 15, 35, 35)
    pdf.set_font("Helvetica", "B", 10)
    for width, title in zip(widths, ("Description", "Qty", "Unit price", "Amount"), strict=True):
        pdf.cell(width, 7, title, border="B")
    pdf.ln()
    pdf.set_font("Helvetica", size=10)
    for row in line_rows(invoice):
        for width, value in zip(widths, row, strict=True):
            pdf.cell(width, 7, _latin1(value))
        pdf.ln()
    pdf.ln(2)
    for name, value in summary_rows(invoice):
        pdf.set_font("Helvetica", "B" if name == "Total" else "", 10)
        pdf.cell(sum(widths[:3]), 6, _latin1(name), align="R")
        pdf.cell(widths[3], 6, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _block(pdf: FPDF, title: str, lines: list[str]) -> None:
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 6, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for line in lines:
        pdf.cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


def render_receipt_html(charge: Mapping[str, Any]) -> str:
    """A charge's receipt page."""
    e = html.escape
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    paid = money(int(charge["amount"]), str(charge["currency"]))
    method = f"{card.get('brand', 'card')} ending {card.get('last4', '')}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Receipt {e(str(charge["id"]))}</title></head>
<body><main>
<h1>Receipt</h1>
<p>This page stands in for Stripe's receipt on the dev server.</p>
<dl>
 <dt>Amount paid</dt><dd id="amount-paid">{e(paid)}</dd>
 <dt>Date paid</dt><dd>{e(_date(charge.get("created")))}</dd>
 <dt>Payment method</dt><dd>{e(method)}</dd>
 <dt>Charge</dt><dd>{e(str(charge["id"]))}</dd>
</dl>
</main></body></html>
"""
