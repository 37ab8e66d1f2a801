"""What a customer's tokens look like: pure functions over the account and its holds."""

from __future__ import annotations

from dataclasses import dataclass

from token_billing.domain.catalog import (
    LOW_BALANCE_MT,
    PACKAGES,
    TokenPackage,
    estimated_hours,
    estimated_hours_exact,
)
from token_billing.store.records import Account

EMPTY_ACCOUNT_FIELDS = {
    "balance_mt": 0,
    "held_mt": 0,
    "available_mt": 0,
    "version": 0,
    "purchased_mt": 0,
    "bonus_mt": 0,
    "granted_mt": 0,
    "used_mt": 0,
    "clawed_back_mt": 0,
}


def account_or_empty(account: Account | None, customer_id: str) -> Account:
    """A customer who never had tokens reads as an empty account, not a 404: a new
    customer's dashboard shows zero and the packs to buy."""
    if account is not None:
        return account
    return Account(
        customer_id=customer_id,
        plan_tier=None,
        created_at=None,
        updated_at=None,
        **EMPTY_ACCOUNT_FIELDS,
    )


@dataclass(frozen=True, slots=True)
class BalanceView:
    account: Account
    estimated_hours_remaining: int
    estimated_hours_remaining_exact: str
    low_balance: bool


def balance_view(account: Account) -> BalanceView:
    """Estimated hours and the low-balance warning count spendable (available) tokens:
    tokens reserved by running VMs are already spoken for."""
    return BalanceView(
        account=account,
        estimated_hours_remaining=estimated_hours(account.available_mt),
        estimated_hours_remaining_exact=estimated_hours_exact(account.available_mt),
        low_balance=account.available_mt < LOW_BALANCE_MT,
    )


def quick_purchase_suggestions(available_mt: int) -> list[TokenPackage]:
    """The packages that would lift available tokens above the low-balance line, cheapest
    first (all of them when the balance is already healthy)."""
    lifting = [p for p in PACKAGES.values() if available_mt + p.total_mt >= LOW_BALANCE_MT]
    return sorted(lifting, key=lambda package: package.price_cents)
