"""The records the store reads and writes: accounts, ledger entries, holds, orders."""

from __future__ import annotations

from dataclasses import dataclass

ACTIVE = "active"
# An order is written pending and credited only from pending (orders.paid_transition).
PENDING = "pending"
# The statuses of an order that was paid (and so credited): refunds and disputes follow it.
PAID_STATUSES = frozenset({"paid", "partially_refunded", "refunded", "disputed"})


@dataclass(frozen=True, slots=True)
class PostedEntry:
    """The result of a balance change; `replayed` when the key had already been used."""

    txn_id: str
    customer_id: str
    kind: str
    amount_mt: int
    created_at: str
    replayed: bool
    # On a replay: what the first call answered beyond the entry (JSON the domain wrote
    # into the entry's `reply` attribute), so the replay answers exactly that.
    reply: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    customer_id: str
    balance_mt: int
    held_mt: int
    available_mt: int
    version: int
    purchased_mt: int
    bonus_mt: int
    granted_mt: int
    used_mt: int
    clawed_back_mt: int
    plan_tier: str | None
    created_at: str | None
    updated_at: str | None


@dataclass(frozen=True, slots=True)
class Hold:
    hold_id: str
    customer_id: str
    vm_id: str | None
    amount_mt: int  # still reserved
    original_mt: int
    captured_mt: int
    released_mt: int
    status: str  # active | settled | released | expired
    created_at: str
    expires_at: str
    request_hash: str

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


@dataclass(frozen=True, slots=True)
class NewHold:
    hold_id: str
    amount_mt: int
    expires_at: str
    vm_id: str | None
    canonical_request: str


@dataclass(frozen=True, slots=True)
class Capture:
    entry: PostedEntry
    from_hold_mt: int
    released_mt: int


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
