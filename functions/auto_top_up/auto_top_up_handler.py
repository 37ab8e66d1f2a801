"""auto-top-up: a customer's auto top-up settings, card, state and last attempts.

Its own function so that neither stripe (the charger's) nor these models weigh on balances.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.observability import logger
from token_billing.core.units import tokens_to_mt
from token_billing.domain.auto_top_up.settings import (
    SettingsAuthor,
    SettingsRequest,
    settings_view,
    update_settings,
)
from token_billing.edge.identity import caller_for_customer
from token_billing.edge.models.auto_top_up import AutoTopUpIn, AutoTopUpOut
from token_billing.edge.models.customer_path import CustomerId
from token_billing.edge.resolver import create_resolver
from token_billing.runtime import default_top_up_store

app = create_resolver()
default_top_up_store()  # create the DynamoDB client during init
ROUTE = "/api/v1/customers/<customer_id>/tokens/auto-top-up"


@app.get(ROUTE, tags=["auto top-up"], summary="Auto top-up settings, card, state, attempts")
def get_auto_top_up(customer_id: CustomerId) -> AutoTopUpOut:
    caller_for_customer(app, customer_id)
    return AutoTopUpOut.of(settings_view(customer_id, store=default_top_up_store()))


@app.put(
    ROUTE,
    tags=["auto top-up"],
    summary="Set auto top-up (enabling records consent)",
    description=(
        "Only the customer's own token consents to off-session charges of their card: it "
        "alone may enable auto top-up, raise `max_charges_per_day` or `max_cents_per_month`, "
        "change the package, threshold or target, or accept a consent text version; the "
        "consent records its subject. An admin token for another customer (support) may "
        "turn auto top-up off or lower its caps, recorded under the admin's subject "
        "(`updated_by`); anything else it asks is a 403 `cardholder_only`, nothing changed."
    ),
)
def put_auto_top_up(customer_id: CustomerId, body: AutoTopUpIn) -> AutoTopUpOut:
    caller = caller_for_customer(app, customer_id)
    request = SettingsRequest(
        enabled=body.enabled,
        package_id=body.package_id,
        threshold_mt=None if body.threshold is None else tokens_to_mt(body.threshold),
        target_mt=None if body.target is None else tokens_to_mt(body.target),
        max_charges_per_day=body.max_charges_per_day,
        max_cents_per_month=body.max_cents_per_month,
        consent_text_version=body.consent_text_version,
    )
    # The cardholder is the customer's own token; an admin acting on another customer's
    # account is support, who may only stop charges or lower their caps.
    author = SettingsAuthor(caller.subject, is_cardholder=caller.customer_id == customer_id)
    view = update_settings(customer_id, request, author=author, store=default_top_up_store())
    return AutoTopUpOut.of(view)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
