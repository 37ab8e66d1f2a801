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
    )
