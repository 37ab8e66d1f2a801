"""The customer id every `/api/v1/customers/{customer_id}/...` route takes from its path."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path

# The same ids as the ledger accepts (store.table_layout.CUSTOMER_ID_PATTERN: 1-64 letters,
# digits, _ and -, starting with a letter or digit), in the form pydantic's regex reads.
CustomerId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
]
