"""The idempotency key a client sends with a request that creates or moves something."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Header
from pydantic import Field

# The same keys as the ledger accepts (store.table_layout.IDEMPOTENCY_KEY_PATTERN), in the
# form pydantic's regex engine reads: `$` there matches only at the very end.
IDEMPOTENCY_KEY_REGEX = r"^[A-Za-z0-9][A-Za-z0-9_.:/+=-]*$"
IDEMPOTENCY_KEY_MAX_CHARS = 128
IDEMPOTENCY_KEY_DESCRIPTION = (
    "1-128 characters of letters, digits and _.:/+=-; a repeated request with the same key "
    "returns the first result"
)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_REGEX,
        max_length=IDEMPOTENCY_KEY_MAX_CHARS,
        description=IDEMPOTENCY_KEY_DESCRIPTION,
    ),
]


def idempotency_key_field(description: str) -> str | None:
    """A body field holding an idempotency key (optional: the header may carry it)."""
    result: str | None = Field(
        default=None,
        pattern=IDEMPOTENCY_KEY_REGEX,
        max_length=IDEMPOTENCY_KEY_MAX_CHARS,
        description=description,
    )
    return result
