"""purchase: a Stripe Checkout Session for one token pack, for the calling customer."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.observability import logger
from token_billing.domain.auto_top_up.settings import stripe_customer_for
from token_billing.domain.purchases import CheckoutConfig, start_purchase
from token_billing.edge.identity import caller_for_customer
from token_billing.edge.models.customer_path import CustomerId
from token_billing.edge.models.idempotency import IdempotencyKeyHeader
from token_billing.edge.models.purchase import PurchaseIn, PurchaseOut
from token_billing.edge.resolver import create_resolver
from token_billing.integrations.stripe_gateway import (
    create_checkout_session,
    create_stripe_customer,
)
from token_billing.runtime import default_order_store, default_top_up_store

app = create_resolver()
default_order_store()  # create the DynamoDB client during init


@app.post(
    "/api/v1/customers/<customer_id>/tokens/purchase",
    tags=["purchases"],
    summary="Start a Stripe Checkout for a token pack",
)
def purchase(
    customer_id: CustomerId,
    body: PurchaseIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> PurchaseOut:
    caller_for_customer(app, customer_id)
    key = idempotency_key
    result = start_purchase(
        customer_id=customer_id,
        package_id=body.package_id,
        success_url=body.success_url,
        cancel_url=body.cancel_url,
        idempotency_key=key,
        store=default_order_store(),
        create_session=create_checkout_session,
        config=CheckoutConfig.from_environment(),
        save_card=bool(body.save_card),
        stripe_customer=lambda: stripe_customer_for(
            customer_id, store=default_top_up_store(), create=create_stripe_customer
        ),
    )
    logger.info("checkout started", extra={"order_id": result.order.order_id})
    return PurchaseOut(
        order_id=result.order.order_id,
        checkout_url=result.checkout_url,
        session_id=result.session_id,
        status=result.order.status,
        package_id=result.order.package_id,
        price_cents=result.order.price_cents,
        currency=result.order.currency,
    )


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
