"""Auto top-up settings (the auto-top-up function): what the customer asked for, with
consent, validated before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from token_billing.core.clock import utc_now_iso
from token_billing.core.errors import Forbidden, InvalidRequest
from token_billing.core.observability import logger
from token_billing.core.units import format_tokens
from token_billing.domain.auto_top_up.vocabulary import (
    DEFAULT_MAX_CHARGES_PER_DAY,
    MAX_PACKS_PER_ATTEMPT,
    TopUpStatus,
)
from token_billing.domain.catalog import (
    LOW_BALANCE_MT,
    TokenPackage,
    UnknownCatalogItem,
    get_package,
)
from token_billing.store.top_up_records import Attempt, SettingsWrite, TopUpState
from token_billing.store.top_up_store import TopUpStore

CONSENT_VERSION = "2026-12-01"
CONSENT_TEXT = (
    "I authorise this service to charge my saved card for the selected token pack, without "
    "asking me each time, whenever my available tokens fall below my threshold: at most my "
    "daily number of charges and my monthly amount. I can turn auto top-up off at any time."
)
DEFAULT_THRESHOLD_MT = LOW_BALANCE_MT
MAX_CHARGES_PER_DAY = 10
MAX_THRESHOLD_MT = 1_000_000_000  # a million tokens
MAX_CENTS_PER_MONTH = 1_000_000  # $10,000
ATTEMPTS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class SettingsRequest:
    enabled: bool
    package_id: str | None = None
    threshold_mt: int | None = None
    target_mt: int | None = None
    max_charges_per_day: int | None = None
    max_cents_per_month: int | None = None
    consent_text_version: str | None = None


@dataclass(frozen=True, slots=True)
class SettingsAuthor:
    """Who asks: the customer's own token (the cardholder, who alone consents to charges of
    their card) or support's admin token for another customer's account."""

    subject: str
    is_cardholder: bool


class CardholderOnly(Forbidden):
    code = "cardholder_only"


@dataclass(frozen=True, slots=True)
class TopUpView:
    customer_id: str
    state: TopUpState
    status: TopUpStatus
    package: TokenPackage | None
    threshold_mt: int
    target_mt: int
    max_charges_per_day: int
    attempts: list[Attempt]


def _package(package_id: str) -> TokenPackage:
    try:
        return get_package(package_id)
    except UnknownCatalogItem as error:
        raise InvalidRequest(str(error), field="package_id") from None


def status_of(state: TopUpState) -> TopUpStatus:
    """The state the settings show: off, charging, or stopped until the customer acts."""
    if not state.enabled:
        return "disabled"
    if state.paused_reason == "authentication_required":
        return "needs_authentication"
    if state.paused_reason:
        return "paused"
    return "active"


def settings_view(customer_id: str, *, store: TopUpStore) -> TopUpView:
    """GET: settings (or their defaults), card, state, the last 10 attempts. 2 reads."""
    state = store.get_state(customer_id)
    package = get_package(state.package_id) if state.package_id else None
    threshold = state.threshold_mt if state.threshold_mt is not None else DEFAULT_THRESHOLD_MT
    target = state.target_mt
    if target is None:
        target = threshold + (package.total_mt if package else 0)
    return TopUpView(
        customer_id=customer_id,
        state=state,
        status=status_of(state),
        package=package,
        threshold_mt=threshold,
        target_mt=target,
        max_charges_per_day=state.max_charges_per_day or DEFAULT_MAX_CHARGES_PER_DAY,
        attempts=store.recent_attempts(customer_id, limit=ATTEMPTS_SHOWN),
    )


def validated_settings(
    request: SettingsRequest, current: TopUpState, *, author: SettingsAuthor, now: str
) -> SettingsWrite:
    """The write a PUT makes, or InvalidRequest naming the field (CardholderOnly for what
    only the cardholder may do); nothing is written before."""
    if not author.is_cardholder:
        return support_settings(request, current, subject=author.subject)
    package_id = request.package_id or current.package_id
    if request.enabled and not package_id:
        raise InvalidRequest("package_id is required to enable auto top-up", field="package_id")
    package = _package(package_id or "starter")
    threshold = DEFAULT_THRESHOLD_MT if request.threshold_mt is None else request.threshold_mt
    if not 0 <= threshold <= MAX_THRESHOLD_MT:
        raise InvalidRequest(
            f"threshold must be between 0 and {format_tokens(MAX_THRESHOLD_MT)} tokens",
            field="threshold",
        )
    target = threshold + package.total_mt if request.target_mt is None else request.target_mt
    if target <= threshold:
        raise InvalidRequest("target must be above threshold", field="target")
    if target - threshold > MAX_PACKS_PER_ATTEMPT * package.total_mt:
        raise InvalidRequest(
            f"target may be at most {MAX_PACKS_PER_ATTEMPT} packs above threshold",
            field="target",
        )
    per_day = (
        DEFAULT_MAX_CHARGES_PER_DAY
        if request.max_charges_per_day is None
        else request.max_charges_per_day
    )
    if not 1 <= per_day <= MAX_CHARGES_PER_DAY:
        raise InvalidRequest(
            f"max_charges_per_day must be between 1 and {MAX_CHARGES_PER_DAY}",
            field="max_charges_per_day",
        )
    cap = request.max_cents_per_month
    if cap is None and request.enabled:
        raise InvalidRequest(
            "max_cents_per_month is required when enabling auto top-up",
            field="max_cents_per_month",
        )
    if cap is not None and not package.price_cents <= cap <= MAX_CENTS_PER_MONTH:
        raise InvalidRequest(
            f"max_cents_per_month must be between one pack ({package.price_cents}) and "
            f"{MAX_CENTS_PER_MONTH}",
            field="max_cents_per_month",
        )
    consent_version = consent_at = consent_by = None
    if request.enabled:
        if request.consent_text_version != CONSENT_VERSION:
            raise InvalidRequest(
                f"enabling needs consent: send consent_text_version {CONSENT_VERSION!r} "
                "after showing its text",
                field="consent_text_version",
            )
        consent_version, consent_at, consent_by = CONSENT_VERSION, now, author.subject
    return SettingsWrite(
        enabled=request.enabled,
        package_id=package.package_id,
        threshold_mt=threshold,
        target_mt=target,
        max_charges_per_day=per_day,
        max_cents_per_month=cap,
        consent_version=consent_version,
        consent_at=consent_at,
        consent_by=consent_by,
        changed_by=author.subject,
    )


def _beyond_support(request: SettingsRequest, current: TopUpState) -> list[str]:
    """What of the request only the cardholder may ask: turning on, raising a cap, or any
    other change of what their card is charged for."""
    asks = [
        name
        for name, asked, now in (
            ("package_id", request.package_id, current.package_id),
            ("threshold", request.threshold_mt, current.threshold_mt),
            ("target", request.target_mt, current.target_mt),
            ("consent_text_version", request.consent_text_version, current.consent_version),
        )
        if asked is not None and asked != now
    ]
    if request.enabled and not current.enabled:
        asks.insert(0, "enabled")
    per_day = request.max_charges_per_day
    if per_day is not None and per_day > (
        current.max_charges_per_day or DEFAULT_MAX_CHARGES_PER_DAY
    ):
        asks.append("max_charges_per_day")
    cap, current_cap = request.max_cents_per_month, current.max_cents_per_month
    if cap is not None and (current_cap is None or cap > current_cap):
        asks.append("max_cents_per_month")
    return asks


def support_settings(
    request: SettingsRequest, current: TopUpState, *, subject: str
) -> SettingsWrite:
    """What support may write for a customer: auto top-up off, or its caps lowered (the
    safe direction), everything else as the cardholder left it; CardholderOnly otherwise.
    The consent stays the cardholder's; the write records support's subject."""
    asks = _beyond_support(request, current)
    if asks:
        raise CardholderOnly(
            "only the cardholder's own token may turn on auto top-up, raise its caps, or "
            "change its package, threshold, target or consent; support may turn it off or "
            f"lower its caps (asked to change: {', '.join(asks)})"
        )
    per_day, cap = request.max_charges_per_day, request.max_cents_per_month
    if per_day is not None and per_day < 1:
        raise InvalidRequest("max_charges_per_day must be at least 1", field="max_charges_per_day")
    if cap is not None and cap < 0:
        raise InvalidRequest("max_cents_per_month must be 0 or more", field="max_cents_per_month")
    package = _package(current.package_id or "starter")
    threshold = DEFAULT_THRESHOLD_MT if current.threshold_mt is None else current.threshold_mt
    return SettingsWrite(
        enabled=request.enabled and current.enabled,
        package_id=package.package_id,
        threshold_mt=threshold,
        target_mt=threshold + package.total_mt if current.target_mt is None else current.target_mt,
        max_charges_per_day=(
            (current.max_charges_per_day or DEFAULT_MAX_CHARGES_PER_DAY)
            if per_day is None
            else per_day
        ),
        max_cents_per_month=current.max_cents_per_month if cap is None else cap,
        consent_version=None,  # unchanged: the cardholder's
        consent_at=None,
        consent_by=None,
        changed_by=subject,
        expected_settings_version=current.settings_version,
    )


def update_settings(
    customer_id: str, request: SettingsRequest, *, author: SettingsAuthor, store: TopUpStore
) -> TopUpView:
    """PUT: validate everything, then one conditional UpdateItem (enabling needs a card)."""
    current = store.get_state(customer_id)
    write = validated_settings(request, current, author=author, now=utc_now_iso())
    store.write_settings(customer_id, write)
    logger.info(
        "auto top-up settings written",
        extra={
            "customer_id": customer_id,
            "enabled": write.enabled,
            "by": author.subject,
            "cardholder": author.is_cardholder,
        },
    )
    return settings_view(customer_id, store=store)


def stripe_customer_for(
    customer_id: str, *, store: TopUpStore, create: Callable[[str], str]
) -> str:
    """The customer's one Stripe Customer: the id kept on our side, or a new one kept now."""
    kept = store.get_state(customer_id).stripe_customer_id
    if kept:
        return kept
    return store.attach_stripe_customer(customer_id, create(customer_id))
