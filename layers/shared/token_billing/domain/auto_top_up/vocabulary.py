"""What the auto top-up steps share: the words their outcomes are named with (stored in
attempts and the TOPUP item, put in events, metrics and the API: never renamed), the
order kinds, the event source and the limits with their reasons."""

from __future__ import annotations

from typing import Literal

KIND = "auto_top_up"
RECOVERY_KIND = "auto_top_up_recovery"
EVENT_SOURCE = "token-billing"

# ---- outcomes ----------------------------------------------------------------------------

# Why a crossing admitted no attempt, in the order a customer would want to hear it
# (`admission.refusal_reason`); `card_expired` and `monthly_cap_reached` can also be known
# before any write is tried.
RefusalReason = Literal[
    "disabled", "no_card", "paused", "cap_reached", "monthly_cap_reached", "in_flight",
    "card_expired",
]  # fmt: skip
# What a crossing did: one attempt admitted, a redelivery of a crossing seen before, or
# the refusal's reason (recorded as an attempt with that status).
AdmissionOutcome = Literal["admitted", "duplicate"] | RefusalReason
# How a charged attempt ended (its status from then on). `provider_unavailable` and
# `processing` are no verdict: the order stays pending and its webhook may still credit it.
# `provider_auth_failed`: Stripe refused OUR key (the operator's problem, never counted
# against the card); `expired`: older than Stripe's idempotency window and never charged
# (found by looking it up, not by sending it again), so closed without a charge.
ChargeOutcome = Literal[
    "succeeded", "processing", "provider_unavailable", "authentication_required", "declined",
    "error", "provider_auth_failed", "expired",
]  # fmt: skip
# `charge_attempt` on an attempt that is no longer `admitted` (a redelivered INSERT).
ChargeResult = ChargeOutcome | Literal["already_ended"]
# Why auto top-up stopped charging until a successful payment or a new card.
PauseReason = Literal["authentication_required", "declined_repeatedly"]
# Why auto top-up was turned off for the customer (they turn it on again).
DisableReason = Literal["card_expired", "card_detached"]
# The state the settings show.
TopUpStatus = Literal["disabled", "active", "paused", "needs_authentication"]

# ---- limits ------------------------------------------------------------------------------

DEFAULT_MAX_CHARGES_PER_DAY = 2
# One attempt buys at most this many packs: a clawback can leave available tokens far
# below zero, and one charge must stay bounded whatever the gap.
MAX_PACKS_PER_ATTEMPT = 10
# Hard declines in a row that pause auto top-up (`declined_repeatedly`): a card that keeps
# failing is not tried forever.
FAILURES_BEFORE_PAUSE = 3
