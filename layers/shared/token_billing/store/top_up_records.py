"""Auto top-up: a customer's settings, saved card, breaker and attempts. DynamoDB only.

    PK              SK                          item
    CUST#<id>       TOPUP                       settings, consent, Stripe customer, saved card,
                                                in-flight attempt, breaker, the day's charge
                                                count (`charges_<YYYY-MM-DD>`) and the month's
                                                cents (`cents_<YYYY-MM>`)
    CUST#<id>       TOPUP#ATTEMPT#<version>     one attempt, named by the account version whose
                                                write crossed the threshold (a redelivered
                                                crossing names the same attempt)
    SCUS#<cus_id>   CUSTOMER                    Stripe Customer -> our customer
    PM#<pm_id>      CUSTOMER                    saved payment method -> our customer

Admission is ONE transaction: the state's conditional update (enabled, same settings, a
card, nothing in flight, not paused, the day's count and the month's cents within the caps),
the attempt's Put and its pending order's Put. DynamoDB conditions cannot add, so the caller
passes `cap - amount` and the condition compares the month's cents with it. The day and
month counters are attributes named by their period, so a new day starts from nothing with
no read-modify-write; the previous period's attribute is removed in the same update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from token_billing.store.codecs import AttributeValue, item_int, item_str
from token_billing.store.order_records import Order
from token_billing.store.table_layout import customer_pk

STATE_SK = "TOPUP"
ATTEMPT_PREFIX = "TOPUP#ATTEMPT#"
ADMITTED = "admitted"


def state_key(customer_id: str) -> dict[str, AttributeValue]:
    return {"PK": {"S": customer_pk(customer_id)}, "SK": {"S": STATE_SK}}


def attempt_sk(version: int) -> str:
    return f"{ATTEMPT_PREFIX}{version:016d}"


def attempt_key(customer_id: str, version: int) -> dict[str, AttributeValue]:
    return {"PK": {"S": customer_pk(customer_id)}, "SK": {"S": attempt_sk(version)}}


def lookup_key(prefix: str, external_id: str) -> dict[str, AttributeValue]:
    return {"PK": {"S": prefix + external_id}, "SK": {"S": "CUSTOMER"}}


def day_counter(day: str) -> str:
    return f"charges_{day}"


def month_counter(month: str) -> str:
    return f"cents_{month}"


@dataclass(frozen=True, slots=True)
class SavedCard:
    payment_method_id: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None


@dataclass(frozen=True, slots=True)
class TopUpState:
    """The TOPUP item, decoded. Counters are read for the given day and month only."""

    customer_id: str
    exists: bool
    enabled: bool = False
    package_id: str | None = None
    threshold_mt: int | None = None
    target_mt: int | None = None
    max_charges_per_day: int | None = None
    max_cents_per_month: int | None = None
    settings_version: int = 0
    consent_version: str | None = None
    consent_at: str | None = None
    consent_by: str | None = None
    updated_by: str | None = None
    stripe_customer_id: str | None = None
    card: SavedCard | None = None
    disabled_reason: str | None = None
    in_flight: str | None = None
    consecutive_failures: int = 0
    paused_reason: str | None = None
    paused_at: str | None = None
    recovery_url: str | None = None
    charge_day: str | None = None
    charge_month: str | None = None
    counters: Mapping[str, int] = field(default_factory=dict)

    def charges_on(self, day: str) -> int:
        return self.counters.get(day_counter(day), 0)

    def cents_in(self, month: str) -> int:
        return self.counters.get(month_counter(month), 0)


def state_from_item(customer_id: str, item: Mapping[str, AttributeValue] | None) -> TopUpState:
    if not item:
        return TopUpState(customer_id=customer_id, exists=False)
    card = None
    pm = item_str(item, "payment_method_id")
    if pm:
        card = SavedCard(
            payment_method_id=pm,
            brand=item_str(item, "card_brand"),
            last4=item_str(item, "card_last4"),
            exp_month=item_int(item, "card_exp_month") or None,
            exp_year=item_int(item, "card_exp_year") or None,
        )

    def optional_int(name: str) -> int | None:
        return item_int(item, name) if name in item else None

    counters = {
        name: int(value["N"])
        for name, value in item.items()
        if name.startswith(("charges_", "cents_")) and "N" in value
    }
    return TopUpState(
        customer_id=customer_id,
        exists=True,
        enabled=bool(item.get("enabled", {}).get("BOOL", False)),
        package_id=item_str(item, "package_id"),
        threshold_mt=optional_int("threshold_mt"),
        target_mt=optional_int("target_mt"),
        max_charges_per_day=optional_int("max_charges_per_day"),
        max_cents_per_month=optional_int("max_cents_per_month"),
        settings_version=item_int(item, "settings_version"),
        consent_version=item_str(item, "consent_version"),
        consent_at=item_str(item, "consent_at"),
        consent_by=item_str(item, "consent_by"),
        updated_by=item_str(item, "updated_by"),
        stripe_customer_id=item_str(item, "stripe_customer_id"),
        card=card,
        disabled_reason=item_str(item, "disabled_reason"),
        in_flight=item_str(item, "in_flight"),
        consecutive_failures=item_int(item, "consecutive_failures"),
        paused_reason=item_str(item, "paused_reason"),
        paused_at=item_str(item, "paused_at"),
        recovery_url=item_str(item, "recovery_url"),
        charge_day=item_str(item, "charge_day"),
        charge_month=item_str(item, "charge_month"),
        counters=counters,
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    customer_id: str
    version: int
    attempt_id: str
    status: str
    created_at: str
    order_id: str | None = None
    package_id: str | None = None
    packs: int = 0
    amount_cents: int = 0
    currency: str | None = None
    available_mt: int | None = None
    target_mt: int | None = None
    ended_at: str | None = None
    decline_code: str | None = None
    message: str | None = None
    payment_intent_id: str | None = None
    stripe_requests: int = 0
    credited: bool = False
    recovery_error: str | None = None


def attempt_from_item(item: Mapping[str, AttributeValue]) -> Attempt:
    return Attempt(
        customer_id=item["customer_id"]["S"],
        version=item_int(item, "version"),
        attempt_id=item["attempt_id"]["S"],
        status=item["status"]["S"],
        created_at=item["created_at"]["S"],
        order_id=item_str(item, "order_id"),
        package_id=item_str(item, "package_id"),
        packs=item_int(item, "packs"),
        amount_cents=item_int(item, "amount_cents"),
        currency=item_str(item, "currency"),
        available_mt=item_int(item, "available_mt") if "available_mt" in item else None,
        target_mt=item_int(item, "target_mt") if "target_mt" in item else None,
        ended_at=item_str(item, "ended_at"),
        decline_code=item_str(item, "decline_code"),
        message=item_str(item, "message"),
        payment_intent_id=item_str(item, "payment_intent_id"),
        stripe_requests=item_int(item, "stripe_requests"),
        credited=bool(item.get("credited", {}).get("BOOL", False)),
        recovery_error=item_str(item, "recovery_error"),
    )


@dataclass(frozen=True, slots=True)
class Admission:
    """A charge the caller wants admitted: the attempt, its order, the caps it checks."""

    attempt_id: str
    version: int
    order: Order
    packs: int
    available_mt: int
    target_mt: int
    settings_version: int
    max_charges_per_day: int
    max_cents_per_month: int
    day: str
    month: str


@dataclass(frozen=True, slots=True)
class AdmissionResult:
    """What the admission's transaction did: `admitted`; `duplicate` (this crossing's
    attempt exists: a redelivery); `refused`, with the TOPUP item as the failed condition
    saw it (the domain names the reason); `lost_race` (a conflicting transaction)."""

    status: Literal["admitted", "duplicate", "refused", "lost_race"]
    current: TopUpState | None = None


@dataclass(frozen=True, slots=True)
class SettingsWrite:
    enabled: bool
    package_id: str
    threshold_mt: int
    target_mt: int
    max_charges_per_day: int
    max_cents_per_month: int | None
    consent_version: str | None
    consent_at: str | None
    consent_by: str | None
    changed_by: str  # the subject whose request this is (the cardholder's, or support's)
    # A write built from the settings as read (support's) is conditional on them being
    # unchanged, so it never writes back what the cardholder changed meanwhile.
    expected_settings_version: int | None = None


@dataclass(frozen=True, slots=True)
class EndWrite:
    """How an admitted attempt ends, as the domain decided it from a TOPUP item holding
    `previous_failures`: the attempt's status and what Stripe said, the item's failure
    count, pause and disabling."""

    status: str
    previous_failures: int
    consecutive_failures: int
    paused_reason: str | None = None
    recovery_url: str | None = None
    recovery_error: str | None = None
    disabled_reason: str | None = None
    payment_intent_id: str | None = None
    decline_code: str | None = None
    message: str | None = None
    stripe_requests: int = 0


# ended: written. already_ended: the attempt was no longer admitted (nothing written).
# lost_race: the TOPUP item changed since the decision, or a transaction conflicted: read it
# again and decide again.
EndResult = Literal["ended", "already_ended", "lost_race"]
