"""The auto top-up settings request and reply."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from token_billing.core.units import format_tokens
from token_billing.domain.auto_top_up.settings import CONSENT_TEXT, CONSENT_VERSION, TopUpView
from token_billing.edge.models.catalog import TOKENS_DESCRIPTION
from token_billing.store.top_up_records import Attempt

TOKENS_PATTERN = r"^\d{1,9}(\.\d{1,3})?$"


class AutoTopUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool
    package_id: str | None = Field(default=None, min_length=1, max_length=32, examples=["growth"])
    threshold: str | None = Field(
        default=None,
        pattern=TOKENS_PATTERN,
        description="Available tokens below which a top-up is bought (default 500).",
    )
    target: str | None = Field(
        default=None,
        pattern=TOKENS_PATTERN,
        description="Available tokens a top-up reaches (default threshold + the pack's tokens).",
    )
    max_charges_per_day: int | None = Field(default=None, ge=1, le=10)
    max_cents_per_month: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Required when enabling."
    )
    consent_text_version: str | None = Field(
        default=None,
        max_length=32,
        description="The version of the consent text shown; required when enabling.",
    )


class CardOut(BaseModel):
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None


class ConsentOut(BaseModel):
    text_version: str
    accepted_at: str
    accepted_by: str


class AttemptOut(BaseModel):
    object: Literal["auto_top_up_attempt"] = "auto_top_up_attempt"
    id: str
    status: str = Field(
        description=(
            "admitted | succeeded | processing | declined | authentication_required | "
            "recovered | provider_unavailable | provider_auth_failed | expired | error | "
            "cap_reached | monthly_cap_reached | in_flight | paused | disabled | no_card | "
            "card_expired"
        )
    )
    order_id: str | None
    package_id: str | None
    packs: int
    amount_cents: int
    currency: str | None
    available: str | None = Field(description="Available tokens at the crossing.")
    available_mt: int | None
    decline_code: str | None
    payment_intent_id: str | None
    credited: bool
    recovery_error: str | None = Field(
        description="Why no recovery link could be made for an authentication_required "
        "attempt (the pause stands; support is alerted)."
    )
    created_at: str
    ended_at: str | None

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        return cls(
            id=attempt.attempt_id,
            status=attempt.status,
            order_id=attempt.order_id,
            package_id=attempt.package_id,
            packs=attempt.packs,
            amount_cents=attempt.amount_cents,
            currency=attempt.currency,
            available=(
                format_tokens(attempt.available_mt) if attempt.available_mt is not None else None
            ),
            available_mt=attempt.available_mt,
            decline_code=attempt.decline_code,
            payment_intent_id=attempt.payment_intent_id,
            credited=attempt.credited,
            recovery_error=attempt.recovery_error,
            created_at=attempt.created_at,
            ended_at=attempt.ended_at,
        )


class AutoTopUpOut(BaseModel):
    object: Literal["auto_top_up"] = "auto_top_up"
    customer_id: str
    enabled: bool
    state: Literal["disabled", "active", "paused", "needs_authentication"]
    paused_reason: str | None
    recovery_url: str | None = Field(description="On-session Checkout that clears the pause.")
    disabled_reason: str | None
    package_id: str | None
    threshold: str = Field(description=TOKENS_DESCRIPTION)
    threshold_mt: int
    target: str = Field(description=TOKENS_DESCRIPTION)
    target_mt: int
    max_charges_per_day: int
    max_cents_per_month: int | None
    currency: str
    consecutive_failures: int
    card: CardOut | None
    consent: ConsentOut | None
    consent_text: str
    consent_text_version: str
    updated_by: str | None = Field(
        description="The JWT subject of the last settings change: the cardholder, or "
        "support when an admin turned auto top-up off or lowered its caps."
    )
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, view: TopUpView) -> AutoTopUpOut:
        state = view.state
        card = state.card
        consent = None
        if state.consent_version and state.consent_at and state.consent_by:
            consent = ConsentOut(
                text_version=state.consent_version,
                accepted_at=state.consent_at,
                accepted_by=state.consent_by,
            )
        return cls(
            customer_id=view.customer_id,
            enabled=state.enabled,
            state=view.status,
            paused_reason=state.paused_reason,
            recovery_url=state.recovery_url,
            disabled_reason=state.disabled_reason,
            package_id=view.package.package_id if view.package else None,
            threshold=format_tokens(view.threshold_mt),
            threshold_mt=view.threshold_mt,
            target=format_tokens(view.target_mt),
            target_mt=view.target_mt,
            max_charges_per_day=view.max_charges_per_day,
            max_cents_per_month=state.max_cents_per_month,
            currency="usd",
            consecutive_failures=state.consecutive_failures,
            card=(
                CardOut(
                    brand=card.brand,
                    last4=card.last4,
                    exp_month=card.exp_month,
                    exp_year=card.exp_year,
                )
                if card
                else None
            ),
            consent=consent,
            consent_text=CONSENT_TEXT,
            consent_text_version=CONSENT_VERSION,
            updated_by=state.updated_by,
            attempts=[AttemptOut.of(attempt) for attempt in view.attempts],
        )
