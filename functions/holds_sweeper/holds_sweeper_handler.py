"""holds-sweeper: every minute, release active holds past their expiry (status
`expired`), so tokens reserved by a VM whose agent died come back to the customer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.observability import count, logger, publish_metrics
from token_billing.domain.holds import sweep_expired
from token_billing.runtime import default_ledger

# A minute's run releases at most this many; the next run takes the rest.
MAX_HOLDS_PER_RUN = 1_000

default_ledger()  # create the DynamoDB client during init


@publish_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    released = sweep_expired(default_ledger(), datetime.now(UTC), limit=MAX_HOLDS_PER_RUN)
    count("ExpiredHoldsReleased", released)
    logger.info("holds swept", extra={"released": released})
    return {"released": released}
