"""Balance, history, orders, dashboard and grant models of the HTTP API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from token_billing.core.units import format_tokens
from token_billing.domain.account_view import BalanceView
from token_billing.domain.catalog import CURRENCY, LOW_BALANCE_MT
from token_billing.edge.models.catalog import (
    HOURS_DESCRIPTION,
    HOURS_EXACT_DESCRIPTION,
    TOKENS_DESCRIPTION,
    PackageOut,
)
from token_billing.edge.models.idempotency import idempotency_key_field
from token_billing.store.history import Transaction
from token_billing.store.order_records import Order
from token_billing.store.records import Hold


class HoldOut(BaseModel):
    object: Literal["token_hold"] = "token_hold"
    id: str
    vm_id: str | None
    amount: str = Field(description=TOKENS_DESCRIPTION)
    amount_mt: int
    expires_at: str
    created_at: str

    @classmethod
    def of(cls, hold: Hold) -> HoldOut:
        return cls(
            id=hold.hold_id,
            vm_id=hold.vm_id,
            amount=format_tokens(hold.amount_mt),
            amount_mt=hold.amount_mt,
            expires_at=hold.expires_at,
            created_at=hold.created_at,
        )


class BalanceOut(BaseModel):
    object: Literal["token_balance"] = "token_balance"
    customer_id: str
    balance: str = Field(description=TOKENS_DESCRIPTION)
    balance_mt: int
    held: str = Field(description="Tokens reserved by running VMs. " + TOKENS_DESCRIPTION)
    held_mt: int
    available: str = Field(description="balance - held: what can be spent. " + TOKENS_DESCRIPTION)
    available_mt: int
    lifetime_purchased: str
    lifetime_purchased_mt: int
    lifetime_bonus: str
    lifetime_bonus_mt: int
    lifetime_granted: str
    lifetime_granted_mt: int
    lifetime_used: str
    lifetime_used_mt: int
    lifetime_clawed_back: str
    lifetime_clawed_back_mt: int
    estimated_hours_remaining: int = Field(description=HOURS_DESCRIPTION)
    estimated_hours_remaining_exact: str = Field(description=HOURS_EXACT_DESCRIPTION)
    low_balance: bool
    low_balance_threshold: str = format_tokens(LOW_BALANCE_MT)
    low_balance_threshold_mt: int = LOW_BALANCE_MT
    active_holds: list[HoldOut]
    plan_tier: str | None = Field(
        default=None, description="Legacy monthly plan, read-only; nothing bills by it."
    )
    version: int

    @classmethod
    def of(cls, view: BalanceView, holds: list[Hold]) -> BalanceOut:
        a = view.account
        return cls(
            customer_id=a.customer_id,
            balance=format_tokens(a.balance_mt),
            balance_mt=a.balance_mt,
            held=format_tokens(a.held_mt),
            held_mt=a.held_mt,
            available=format_tokens(a.available_mt),
            available_mt=a.available_mt,
            lifetime_purchased=format_tokens(a.purchased_mt),
            lifetime_purchased_mt=a.purchased_mt,
            lifetime_bonus=format_tokens(a.bonus_mt),
            lifetime_bonus_mt=a.bonus_mt,
            lifetime_granted=format_tokens(a.granted_mt),
            lifetime_granted_mt=a.granted_mt,
            lifetime_used=format_tokens(a.used_mt),
            lifetime_used_mt=a.used_mt,
            lifetime_clawed_back=format_tokens(a.clawed_back_mt),
            lifetime_clawed_back_mt=a.clawed_back_mt,
            estimated_hours_remaining=view.estimated_hours_remaining,
            estimated_hours_remaining_exact=view.estimated_hours_remaining_exact,
            low_balance=view.low_balance,
            active_holds=[HoldOut.of(hold) for hold in holds],
            plan_tier=a.plan_tier,
            version=a.version,
        )


class TransactionOut(BaseModel):
    object: Literal["token_transaction"] = "token_transaction"
    id: str
    kind: str
    amount: str = Field(
        description="Signed: credits positive, debits negative. " + TOKENS_DESCRIPTION
    )
    amount_mt: int
    created_at: str
    occurred_at: str | None = None
    usage_by_action: dict[str, str] | None = None
    order_id: str | None = None
    package_id: str | None = None
    reason: str | None = None

    @classmethod
    def of(cls, txn: Transaction) -> TransactionOut:
        return cls(
            id=txn.txn_id,
            kind=txn.kind,
            amount=format_tokens(txn.amount_mt),
            amount_mt=txn.amount_mt,
            created_at=txn.created_at,
            occurred_at=txn.occurred_at,
            usage_by_action={a: format_tokens(mt) for a, mt in txn.usage_mt_by_action.items()}
            or None,
            order_id=txn.order_id,
            package_id=txn.package_id,
            reason=txn.reason,
        )


class TransactionListOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[TransactionOut]
    has_more: bool
    next_cursor: str | None


class OrderOut(BaseModel):
    object: Literal["token_order"] = "token_order"
    id: str
    status: str
    package_id: str
    price_cents: int
    currency: str
    tokens: str = Field(description=TOKENS_DESCRIPTION)
    tokens_mt: int
    bonus: str
    bonus_mt: int
    created_at: str
    paid_at: str | None
    checkout_url: str | None
    refunded_cents: int
    clawed_back: str
    clawed_back_mt: int
    flag_reason: str | None
    subtotal_cents: int | None = Field(
        description="What was paid before tax (the catalog price); null until paid.",
    )
    tax_cents: int | None = Field(
        description="Tax charged on top of the subtotal; null until paid."
    )
    total_cents: int | None = Field(
        description="What was charged: subtotal + tax; null until paid."
    )
    invoice_number: str | None = Field(
        description="The Stripe invoice's number; null until Stripe reports it."
    )
    invoice_url: str | None = Field(
        description="The invoice's page (Stripe's hosted invoice); null until known."
    )
    invoice_pdf: str | None = Field(
        description="The invoice as a PDF to download; null until known."
    )
    receipt_url: str | None = Field(
        description="The card payment's receipt; null until Stripe reports it."
    )

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        return cls(
            id=order.order_id,
            status=order.status,
            package_id=order.package_id,
            price_cents=order.price_cents,
            currency=order.currency,
            tokens=format_tokens(order.tokens_mt),
            tokens_mt=order.tokens_mt,
            bonus=format_tokens(order.bonus_mt),
            bonus_mt=order.bonus_mt,
            created_at=order.created_at,
            paid_at=order.paid_at,
            checkout_url=order.checkout_url if order.status == "pending" else None,
            refunded_cents=order.refunded_cents,
            clawed_back=format_tokens(order.clawed_back_mt),
            clawed_back_mt=order.clawed_back_mt,
            flag_reason=order.flag_reason,
            subtotal_cents=order.subtotal_cents,
            tax_cents=order.tax_cents,
            total_cents=order.total_cents,
            invoice_number=order.invoice_number,
            invoice_url=order.invoice_url,
            invoice_pdf=order.invoice_pdf,
            receipt_url=order.receipt_url,
        )


class OrderListOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[OrderOut]
    has_more: bool
    next_cursor: str | None


class UsageOut(BaseModel):
    action: str
    tokens: str = Field(description=TOKENS_DESCRIPTION)
    tokens_mt: int


class DashboardOut(BaseModel):
    object: Literal["token_dashboard"] = "token_dashboard"
    balance: BalanceOut
    recent_transactions: list[TransactionOut]
    recent_orders: list[OrderOut]
    usage_last_30_days: list[UsageOut]
    usage_period_start: str
    usage_period_end: str
    quick_purchase: list[PackageOut]
    currency: str = CURRENCY


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: str = Field(
        pattern=r"^\d{1,9}(\.\d{1,3})?$", description='Tokens to grant, e.g. "250" or "0.5".'
    )
    # No NUL or control characters: the reason is stored on the ledger entry and shown.
    reason: str = Field(min_length=3, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    idempotency_key: str | None = idempotency_key_field(
        "Or send the Idempotency-Key header. One of the two is required."
    )


class GrantOut(BaseModel):
    object: Literal["token_grant"] = "token_grant"
    transaction_id: str
    customer_id: str
    amount: str = Field(description=TOKENS_DESCRIPTION)
    amount_mt: int
    reason: str
    replayed: bool
