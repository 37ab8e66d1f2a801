"""Usage estimates: what a usage profile costs per month, and which package covers it."""

from __future__ import annotations

from dataclasses import dataclass

from token_billing.core.errors import InvalidRequest
from token_billing.domain.catalog import PACKAGES, TokenPackage, get_rate
from token_billing.domain.usage import UsageLine, price_usage

DAYS_PER_MONTH = 30
PERIOD_FACTORS = {"month": 1, "day": DAYS_PER_MONTH}
MAX_PROFILE_LINES = 50


@dataclass(frozen=True, slots=True)
class UsageEstimate:
    lines: list[UsageLine]  # quantities and costs per month
    tokens_per_month_mt: int
    recommended: TokenPackage
    packs_needed: int


def estimate_usage(raw_lines: object, period: str = "month") -> UsageEstimate:
    """Monthly tokens for a usage profile and the cheapest package that covers a month."""
    factor = PERIOD_FACTORS.get(period)
    if factor is None:
        raise InvalidRequest(f"period must be one of: {', '.join(PERIOD_FACTORS)}")
    lines = price_usage(raw_lines, max_lines=MAX_PROFILE_LINES)
    monthly = [_per_month(line, factor) for line in lines]
    need_mt = sum(line.cost_mt for line in monthly)
    package, packs = cheapest_cover(need_mt)
    return UsageEstimate(monthly, need_mt, package, packs)


def _per_month(line: UsageLine, factor: int) -> UsageLine:
    if factor == 1:
        return line
    quantity = line.quantity * factor
    # Re-price the monthly quantity so rounding up happens once, on the monthly figure.
    return UsageLine(line.action, quantity, line.vm_id, get_rate(line.action).cost_mt(quantity))


def cheapest_cover(need_mt: int) -> tuple[TokenPackage, int]:
    """The cheapest single package whose tokens cover `need_mt`; when none does, the
    package that covers it for the least money bought several times (fewest packs on a tie)."""
    covering = [package for package in PACKAGES.values() if package.total_mt >= need_mt]
    if covering:
        return min(covering, key=lambda package: (package.price_cents, package.total_mt)), 1

    def packs(package: TokenPackage) -> int:
        return -(-need_mt // package.total_mt)

    best = min(
        PACKAGES.values(),
        key=lambda package: (packs(package) * package.price_cents, packs(package)),
    )
    return best, packs(best)
