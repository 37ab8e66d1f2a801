"""The one versioned catalog: token packages, usage rates and the low-balance line.

Every price, token count and rate lives here and nowhere else. A change of any figure is a
new CATALOG_VERSION; orders and ledger entries record the version they were priced with.
"""

from __future__ import annotations

from fractions import Fraction
from types import MappingProxyType
from typing import NamedTuple

from token_billing.core.units import MT_PER_TOKEN, cost_mt

CATALOG_VERSION = "2026-11-01"
CURRENCY = "usd"
# Seed figure: estimated hours = total tokens / 100.
TOKENS_PER_ESTIMATED_HOUR = 100
LOW_BALANCE_MT = 500 * MT_PER_TOKEN


class TokenPackage(NamedTuple):
    package_id: str
    name: str
    price_cents: int
    tokens_mt: int
    bonus_mt: int
    # Optional Stripe price id; without one, Checkout gets inline price_data from here.
    stripe_price_id: str | None = None

    @property
    def total_mt(self) -> int:
        return self.tokens_mt + self.bonus_mt

    @property
    def estimated_hours(self) -> int:
        return estimated_hours(self.total_mt)

    @property
    def estimated_hours_exact(self) -> str:
        return estimated_hours_exact(self.total_mt)


class UsageRate(NamedTuple):
    action: str
    rate_mt_per_unit: int
    unit: str
    description: str

    def cost_mt(self, quantity: Fraction) -> int:
        return cost_mt(self.rate_mt_per_unit, quantity)


PACKAGES: MappingProxyType[str, TokenPackage] = MappingProxyType(
    {
        package.package_id: package
        for package in (
            TokenPackage("starter", "Starter", 1_900, 2_000 * MT_PER_TOKEN, 0),
            TokenPackage("growth", "Growth", 4_900, 6_000 * MT_PER_TOKEN, 500 * MT_PER_TOKEN),
            TokenPackage("pro", "Pro", 9_900, 15_000 * MT_PER_TOKEN, 1_500 * MT_PER_TOKEN),
        )
    }
)

RATES: MappingProxyType[str, UsageRate] = MappingProxyType(
    {
        rate.action: rate
        for rate in (
            UsageRate("vm_runtime", 1_000, "minute", "VM runtime, per minute"),
            UsageRate("screenshot", 500, "screenshot", "Screenshot capture"),
            UsageRate("api_call", 100, "call", "API call"),
            UsageRate("ai_message", 200, "message", "AI message"),
            UsageRate("file_upload", 1_000, "MB", "File upload, per MB"),
        )
    }
)


class UnknownCatalogItem(LookupError):
    """A package id or usage action the catalog does not hold."""


def get_package(package_id: str) -> TokenPackage:
    """The package with this id, or UnknownCatalogItem naming the valid ids."""
    package = PACKAGES.get(package_id)
    if package is None:
        raise UnknownCatalogItem(
            f"unknown package {package_id!r}; valid packages: {', '.join(PACKAGES)}"
        )
    return package


def get_rate(action: str) -> UsageRate:
    """The usage rate for this action, or UnknownCatalogItem naming the valid actions."""
    rate = RATES.get(action)
    if rate is None:
        raise UnknownCatalogItem(f"unknown action {action!r}; valid actions: {', '.join(RATES)}")
    return rate


MT_PER_ESTIMATED_HOUR = TOKENS_PER_ESTIMATED_HOUR * MT_PER_TOKEN


def estimated_hours(amount_mt: int) -> int:
    """Hours of platform use an amount of tokens buys, by the seed's rule of thumb, rounded
    to the nearest whole hour (half up) for display: 499.9 tokens is 5, 99 tokens is 1."""
    if amount_mt <= 0:
        return 0
    return (2 * amount_mt + MT_PER_ESTIMATED_HOUR) // (2 * MT_PER_ESTIMATED_HOUR)


def estimated_hours_exact(amount_mt: int) -> str:
    """The same estimate as an exact decimal string, never rounded: 499.9 tokens is
    "4.999", 99 tokens "0.99" (one milli-token is 0.00001 hours)."""
    if amount_mt <= 0:
        return "0"
    whole, frac = divmod(amount_mt, MT_PER_ESTIMATED_HOUR)
    if frac == 0:
        return str(whole)
    return f"{whole}.{frac:05d}".rstrip("0")
