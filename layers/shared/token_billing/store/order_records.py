"""The order record and its codec: a token-pack purchase as the store keeps it.

Apart from `records` so that the debit path, which never reads an order, never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from token_billing.store.codecs import Item, item_int, item_str

# An order is written pending and credited only from pending (orders.paid_transition).
PENDING = "pending"
# The statuses of an order that was paid (and so credited): refunds and disputes follow it.
PAID_STATUSES = frozenset({"paid", "partially_refunded", "refunded", "disputed"})


@dataclass(frozen=True, slots=True)
class PaidAmounts:
    """What a credited payment says was paid, in cents: the tax-exclusive subtotal (the
    catalog price the credit checks), the tax on it, and the total charged."""

    subtotal_cents: int
    tax_cents: int
    total_cents: int


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    customer_id: str
    package_id: str
    catalog_version: str
    price_cents: int
    currency: str
    tokens_mt: int
    bonus_mt: int
    status: str
    created_at: str
    expires_at: int | None = None
    session_id: str | None = None
    checkout_url: str | None = None
    payment_intent_id: str | None = None
    paid_at: str | None = None
    flag_reason: str | None = None
    refunded_cents: int = 0
    disputed_cents: int = 0
    clawed_back_mt: int = 0
    # Auto top-up orders (kind "auto_top_up") buy `packs` packs at once and name the
    # attempt (by the account version that crossed the threshold); purchases buy one.
    kind: str = "purchase"
    packs: int = 1
    attempt_version: int | None = None
    # What was paid, from the credited session or payment (catalog prices are tax-exclusive:
    # subtotal = price_cents, total = subtotal + tax). None until paid.
    subtotal_cents: int | None = None
    tax_cents: int | None = None
    total_cents: int | None = None
    # The billing documents, from verified webhook events only (store/order_documents.py):
    # the Stripe invoice and the charge's receipt. None until their event arrives.
    invoice_id: str | None = None
    invoice_number: str | None = None
    invoice_url: str | None = None
    invoice_pdf: str | None = None
    charge_id: str | None = None
    receipt_url: str | None = None

    @property
    def total_mt(self) -> int:
        return self.tokens_mt + self.bonus_mt


def order_from_item(item: Item) -> Order:
    return Order(
        order_id=item["order_id"]["S"],
        customer_id=item["customer_id"]["S"],
        package_id=item["package_id"]["S"],
        catalog_version=item["catalog_version"]["S"],
        price_cents=int(item["price_cents"]["N"]),
        currency=item["currency"]["S"],
        tokens_mt=int(item["tokens_mt"]["N"]),
        bonus_mt=int(item["bonus_mt"]["N"]),
        status=item["status"]["S"],
        created_at=item["created_at"]["S"],
        expires_at=item_int(item, "expires_at") if "expires_at" in item else None,
        session_id=item_str(item, "session_id"),
        checkout_url=item_str(item, "checkout_url"),
        payment_intent_id=item_str(item, "payment_intent_id"),
        paid_at=item_str(item, "paid_at"),
        flag_reason=item_str(item, "flag_reason"),
        refunded_cents=item_int(item, "refunded_cents"),
        disputed_cents=item_int(item, "disputed_cents"),
        clawed_back_mt=item_int(item, "clawed_back_mt"),
        kind=item_str(item, "kind") or "purchase",
        packs=item_int(item, "packs") or 1,
        attempt_version=item_int(item, "attempt_version") if "attempt_version" in item else None,
        subtotal_cents=_optional_int(item, "subtotal_cents"),
        tax_cents=_optional_int(item, "tax_cents"),
        total_cents=_optional_int(item, "total_cents"),
        invoice_id=item_str(item, "invoice_id"),
        invoice_number=item_str(item, "invoice_number"),
        invoice_url=item_str(item, "invoice_url"),
        invoice_pdf=item_str(item, "invoice_pdf"),
        charge_id=item_str(item, "charge_id"),
        receipt_url=item_str(item, "receipt_url"),
    )


def _optional_int(item: Item, name: str) -> int | None:
    return item_int(item, name) if name in item else None
