"""vm-limits: a customer's per-VM daily token limits (issue 25). The customer sets them; an
admin may lower them (support's safe direction), never raise or remove one. The debit
function enforces them in its one write; this function only keeps the settings item.

Its own small function so that balances stays read-only and no role that writes ledger
entries serves these routes."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.clock import utc_now_iso
from token_billing.core.observability import logger, publish_metrics
from token_billing.domain.vm_limits import update_limits
from token_billing.edge.identity import caller_for_customer
from token_billing.edge.models.customer_path import CustomerId
from token_billing.edge.models.vm_limits import VmLimitsIn, VmLimitsOut
from token_billing.edge.resolver import create_resolver
from token_billing.runtime import default_vm_limit_store

app = create_resolver()
default_vm_limit_store()  # create the DynamoDB client during init
ROUTE = "/api/v1/customers/<customer_id>/tokens/vm-limits"


@app.get(ROUTE, tags=["vm limits"], summary="Per-VM daily token limits")
def get_vm_limits(customer_id: CustomerId) -> VmLimitsOut:
    caller_for_customer(app, customer_id)
    settings = default_vm_limit_store().get(customer_id, consistent=True)
    return VmLimitsOut.of(customer_id, settings)


@app.put(
    ROUTE,
    tags=["vm limits"],
    summary="Replace the per-VM daily limits (an admin may only lower them)",
)
def put_vm_limits(customer_id: CustomerId, body: VmLimitsIn) -> VmLimitsOut:
    caller = caller_for_customer(app, customer_id)
    settings = update_limits(
        default_vm_limit_store(),
        customer_id,
        body.to_update(),
        caller=caller.subject,
        # Only the customer's own token may raise a limit: an admin token may lower it.
        may_raise=caller.customer_id == customer_id,
        now=utc_now_iso(),
    )
    logger.info("VM limits set", extra={"customer_id": customer_id, "by": caller.subject})
    return VmLimitsOut.of(customer_id, settings)


@publish_metrics
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
