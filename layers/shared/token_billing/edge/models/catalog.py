"""Catalog responses and the usage-estimate request."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from token_billing.core.units import format_quantity, format_tokens
from token_billing.domain.catalog import LOW_BALANCE_MT, TokenPackage, UsageRate
from token_billing.domain.estimate import UsageEstimate

TOKENS_DESCRIPTION = 'Exact decimal token amount as a string, e.g. "1999.9".'
HOURS_DESCRIPTION = "Estimated hours (tokens / 100) rounded to the nearest whole hour, for display."
HOURS_EXACT_DESCRIPTION = 'The same estimate as an exact decimal string, never rounded: "4.999".'


class PackageOut(BaseModel):
    object: Literal["token_package"] = "token_package"
    id: str
    name: str
    price_cents: int
    currency: str
    tokens: str = Field(description=TOKENS_DESCRIPTION)
    tokens_mt: int
    bonus: str = Field(description=TOKENS_DESCRIPTION)
    bonus_mt: int
    total_tokens: str = Field(description=TOKENS_DESCRIPTION)
    total_tokens_mt: int
    estimated_hours: int = Field(description=HOURS_DESCRIPTION)
    estimated_hours_exact: str = Field(description=HOURS_EXACT_DESCRIPTION)

    @classmethod
    def of(cls, package: TokenPackage, currency: str) -> PackageOut:
        return cls(
            id=package.package_id,
            name=package.name,
            price_cents=package.price_cents,
            currency=currency,
            tokens=format_tokens(package.tokens_mt),
            tokens_mt=package.tokens_mt,
            bonus=format_tokens(package.bonus_mt),
            bonus_mt=package.bonus_mt,
            total_tokens=format_tokens(package.total_mt),
            total_tokens_mt=package.total_mt,
            estimated_hours=package.estimated_hours,
            estimated_hours_exact=package.estimated_hours_exact,
        )


class CheckoutClientConfig(BaseModel):
    """What a frontend needs to start Stripe Checkout: public values only."""

    stripe_publishable_key: str | None
    currency: str


class PackageListOut(BaseModel):
    object: Literal["list"] = "list"
    catalog_version: str
    data: list[PackageOut]
    has_more: bool = False
    config: CheckoutClientConfig


class RateOut(BaseModel):
    object: Literal["token_rate"] = "token_rate"
    action: str
    unit: str
    description: str
    tokens_per_unit: str = Field(description=TOKENS_DESCRIPTION)
    tokens_per_unit_mt: int

    @classmethod
    def of(cls, rate: UsageRate) -> RateOut:
        return cls(
            action=rate.action,
            unit=rate.unit,
            description=rate.description,
            tokens_per_unit=format_tokens(rate.rate_mt_per_unit),
            tokens_per_unit_mt=rate.rate_mt_per_unit,
        )


class RateListOut(BaseModel):
    object: Literal["list"] = "list"
    catalog_version: str
    low_balance_threshold: str = format_tokens(LOW_BALANCE_MT)
    low_balance_threshold_mt: int = LOW_BALANCE_MT
    data: list[RateOut]
    has_more: bool = False


class UsageProfileLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(min_length=1, max_length=32, examples=["vm_runtime"])
    quantity: Decimal = Field(gt=0, le=10**9, examples=[600])


class UsageEstimateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    usage: list[UsageProfileLineIn] = Field(min_length=1, max_length=50)
    period: Literal["month", "day"] = Field(
        default="month", description="The period the quantities are given for."
    )


class EstimateLineOut(BaseModel):
    action: str
    quantity_per_month: str
    tokens_per_month: str = Field(description=TOKENS_DESCRIPTION)
    tokens_per_month_mt: int


class UsageEstimateOut(BaseModel):
    object: Literal["usage_estimate"] = "usage_estimate"
    catalog_version: str
    lines: list[EstimateLineOut]
    tokens_per_month: str = Field(description=TOKENS_DESCRIPTION)
    tokens_per_month_mt: int
    recommended_package: PackageOut
    packs_needed: int = Field(description="How many of the recommended package cover a month.")

    @classmethod
    def of(cls, estimate: UsageEstimate, catalog_version: str, currency: str) -> UsageEstimateOut:
        return cls(
            catalog_version=catalog_version,
            lines=[
                EstimateLineOut(
                    action=line.action,
                    quantity_per_month=format_quantity(line.quantity),
                    tokens_per_month=format_tokens(line.cost_mt),
                    tokens_per_month_mt=line.cost_mt,
                )
                for line in estimate.lines
            ],
            tokens_per_month=format_tokens(estimate.tokens_per_month_mt),
            tokens_per_month_mt=estimate.tokens_per_month_mt,
            recommended_package=PackageOut.of(estimate.recommended, currency),
            packs_needed=estimate.packs_needed,
        )
