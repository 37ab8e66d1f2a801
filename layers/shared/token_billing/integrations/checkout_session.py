"""What creating a Checkout Session gives back, without loading `stripe`: the purchase
domain names this type, and the debit path never imports the SDK through it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    session_id: str
    url: str
    expires_at: int
