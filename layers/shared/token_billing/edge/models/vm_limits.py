"""Per-VM daily limits and usage by VM (issue 25): requests and replies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from token_billing.core.units import format_tokens, tokens_to_mt
from token_billing.domain.vm_limits import MAX_NAMED_VM_LIMITS, LimitsUpdate
from token_billing.domain.vm_usage import UsageByVm, VmPeriodUsage
from token_billing.edge.models.catalog import TOKENS_DESCRIPTION
from token_billing.store.vm_limits import LIMITS_REFRESH_S, VmLimitSettings

TOKENS_PATTERN = r"^\d{1,9}(\.\d{1,3})?$"
# What a usage line's vm_id or a credential's VM may be: letters, digits and _.:/+=-.
VmId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/+=-]*$"),
]
DailyLimit = Annotated[str, StringConstraints(pattern=TOKENS_PATTERN)]
LIMIT_DESCRIPTION = (
    "Tokens a UTC day, as an exact decimal string (at most 3 decimals); null: no limit. "
)


class VmLimitsIn(BaseModel):
    """The whole set of limits; it replaces the one before."""

    model_config = ConfigDict(extra="forbid")

    default_daily_limit: DailyLimit | None = Field(
        default=None,
        description=LIMIT_DESCRIPTION + "Applies to every VM that `limits` does not name.",
        examples=["500"],
    )
    limits: dict[VmId, DailyLimit | None] = Field(
        default_factory=dict,
        max_length=MAX_NAMED_VM_LIMITS,
        description=(
            LIMIT_DESCRIPTION + "Per VM id, overriding the default (null: that VM has no "
            f"limit). At most {MAX_NAMED_VM_LIMITS} VMs."
        ),
        examples=[{"vm-7": "100", "vm-build": None}],
    )

    def to_update(self) -> LimitsUpdate:
        def mt(tokens: str | None) -> int | None:
            return None if tokens is None else tokens_to_mt(tokens)

        return LimitsUpdate(
            mt(self.default_daily_limit),
            {vm_id: mt(tokens) for vm_id, tokens in self.limits.items()},
        )


def _tokens(amount_mt: int | None) -> str | None:
    return None if amount_mt is None else format_tokens(amount_mt)


class VmLimitsOut(BaseModel):
    object: Literal["vm_limits"] = "vm_limits"
    customer_id: str
    default_daily_limit: str | None = Field(description=TOKENS_DESCRIPTION + " null: none.")
    default_daily_limit_mt: int | None
    limits: dict[str, str | None] = Field(description="Per VM id; null: no limit for that VM.")
    limits_mt: dict[str, int | None]
    max_named_vms: int = MAX_NAMED_VM_LIMITS
    takes_effect_within_s: int = Field(
        default=int(LIMITS_REFRESH_S),
        description="A changed limit binds every debit within this many seconds.",
    )
    version: int
    updated_at: str | None
    updated_by: str | None

    @classmethod
    def of(cls, customer_id: str, settings: VmLimitSettings | None) -> VmLimitsOut:
        settings = settings or VmLimitSettings(None, {})
        return cls(
            customer_id=customer_id,
            default_daily_limit=_tokens(settings.default_daily_limit_mt),
            default_daily_limit_mt=settings.default_daily_limit_mt,
            limits={vm_id: _tokens(mt) for vm_id, mt in sorted(settings.limits_mt.items())},
            limits_mt=dict(sorted(settings.limits_mt.items())),
            version=settings.version,
            updated_at=settings.updated_at,
            updated_by=settings.updated_by,
        )


class VmUsageOut(BaseModel):
    vm_id: str | None = Field(description="null: usage lines that named no VM.")
    used: str = Field(description="Over the period. " + TOKENS_DESCRIPTION)
    used_mt: int
    daily_limit: str | None
    daily_limit_mt: int | None
    used_today: str
    used_today_mt: int
    at_limit: bool = Field(description="Today's spending reached the VM's daily limit.")

    @classmethod
    def of(cls, vm: VmPeriodUsage) -> VmUsageOut:
        return cls(
            vm_id=vm.vm_id,
            used=format_tokens(vm.used_mt),
            used_mt=vm.used_mt,
            daily_limit=_tokens(vm.daily_limit_mt),
            daily_limit_mt=vm.daily_limit_mt,
            used_today=format_tokens(vm.used_today_mt),
            used_today_mt=vm.used_today_mt,
            at_limit=vm.at_limit,
        )


class VmDayAmountOut(BaseModel):
    vm_id: str | None
    used: str
    used_mt: int


class UsageDayOut(BaseModel):
    day: str
    total: str = Field(description=TOKENS_DESCRIPTION)
    total_mt: int
    top_vms: list[VmDayAmountOut] = Field(description="The period's top VMs that used tokens.")
    other: str = Field(description="Every other VM that day. " + TOKENS_DESCRIPTION)
    other_mt: int


class UsageByVmOut(BaseModel):
    object: Literal["token_usage_by_vm"] = "token_usage_by_vm"
    customer_id: str
    group_by: Literal["vm"] = "vm"
    period_start: str
    period_end: str
    total: str = Field(description=TOKENS_DESCRIPTION)
    total_mt: int
    vm_count: int = Field(description="VMs that used tokens in the period.")
    top_vms: list[VmUsageOut] = Field(description="Most tokens first.")
    days: list[UsageDayOut] = Field(description="Oldest first, every day of the period.")

    @classmethod
    def of(cls, customer_id: str, report: UsageByVm) -> UsageByVmOut:
        return cls(
            customer_id=customer_id,
            period_start=report.first_day.isoformat(),
            period_end=report.last_day.isoformat(),
            total=format_tokens(report.total_mt),
            total_mt=report.total_mt,
            vm_count=report.vm_count,
            top_vms=[VmUsageOut.of(vm) for vm in report.top],
            days=[
                UsageDayOut(
                    day=day.day.isoformat(),
                    total=format_tokens(day.total_mt),
                    total_mt=day.total_mt,
                    top_vms=[
                        VmDayAmountOut(vm_id=vm_id, used=format_tokens(mt), used_mt=mt)
                        for vm_id, mt in day.by_vm_mt.items()
                    ],
                    other=format_tokens(day.other_mt),
                    other_mt=day.other_mt,
                )
                for day in report.days
            ],
        )
