"""The purchase request and reply."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PurchaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    package_id: str = Field(min_length=1, max_length=32, examples=["growth"])
    success_url: str | None = Field(default=None, max_length=2048)
    cancel_url: str | None = Field(default=None, max_length=2048)
    save_card: bool | None = Field(
        default=None,
        description="Save the card for auto top-up (off-session charges of later packs).",
    )


class PurchaseOut(BaseModel):
    object: Literal["checkout"] = "checkout"
    order_id: str
    checkout_url: str
    session_id: str
    status: str
    package_id: str
    price_cents: int
    currency: str
