"""What an off-session charge attempt gave back, without loading `stripe`: the auto top-up
domain names this type; only the charger function's gateway builds it from Stripe's reply
(a PaymentIntent's, or an invoice's: its creation, then its payment)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# succeeded: the money moved. declined: a hard decline (card_declined, expired_card, ...).
# authentication_required: the bank wants the customer on-session (3-D Secure).
# processing: not final; the webhook tells. retryable: Stripe 5xx, rate limit, timeout or
# connection error: nothing is known, so the same request is sent again under the same key.
# failed: a request Stripe refused (our bug or a removed payment method).
# provider_auth_failed: Stripe refused OUR key (401 revoked or rolled, 403 a restricted key
# without the permission): the operator's problem, never counted against the customer.
PaymentStatus = Literal[
    "succeeded",
    "declined",
    "authentication_required",
    "processing",
    "retryable",
    "failed",
    "provider_auth_failed",
]


@dataclass(frozen=True, slots=True)
class OffSessionResult:
    status: PaymentStatus
    payment_intent_id: str | None = None
    code: str | None = None
    message: str | None = None
    # The PaymentIntent (or, for an invoice's payment, the Invoice) as Stripe returned it,
    # when it did (a lookup credits from it).
    raw: Mapping[str, Any] | None = None
    # The invoice an auto top-up pays (StripeInvoices=true), once Stripe has made it.
    invoice_id: str | None = None
