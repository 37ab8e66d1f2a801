"""top-up-charger: admitted auto top-up attempts (their INSERT on the table's stream) charged
with ONE off-session payment each (an invoice's with StripeInvoices=true, else a
PaymentIntent), outcomes recorded. The only stream consumer that
loads stripe: the ledger-stream function admits, this one pays.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.observability import logger, publish_metrics
from token_billing.domain.auto_top_up.charge import RecoveryUrls, charge_attempt
from token_billing.domain.auto_top_up.vocabulary import EVENT_SOURCE
from token_billing.domain.billing_settings import BillingSettings
from token_billing.integrations.eventbridge import event_bus_name, events_client, put_event
from token_billing.integrations.stripe_gateway import StripePaymentGateway
from token_billing.runtime import default_ledger, default_order_store, default_top_up_store
from token_billing.store.table_layout import CUSTOMER_PREFIX
from token_billing.store.top_up_records import ATTEMPT_PREFIX

GATEWAY = StripePaymentGateway()
default_top_up_store()  # create the DynamoDB client during init


def publish(detail_type: str, detail: Mapping[str, Any]) -> None:
    put_event(
        events_client(),
        bus_name=event_bus_name(),
        source=EVENT_SOURCE,
        detail_type=detail_type,
        detail=detail,
        event_id=str(detail.get("id")),
    )


def recovery_urls() -> RecoveryUrls | None:
    success, cancel = os.environ.get("CHECKOUT_SUCCESS_URL"), os.environ.get("CHECKOUT_CANCEL_URL")
    return RecoveryUrls(success, cancel) if success and cancel else None


def credit_found(paid: Mapping[str, Any]) -> object:
    """A succeeded PaymentIntent, or a paid invoice, found for an attempt past Stripe's
    idempotency window, credited through the webhook's exactly-once path (loaded only
    then: rare)."""
    from token_billing.domain.auto_top_up.webhooks import invoice_paid, payment_intent_succeeded

    credit = invoice_paid if paid.get("object") == "invoice" else payment_intent_succeeded
    return credit(
        paid,
        orders=default_order_store(),
        ledger=default_ledger(),
        top_ups=default_top_up_store(),
    )


def charge_record(record: DynamoDBRecord) -> None:
    keys = (record.raw_event.get("dynamodb") or {}).get("Keys") or {}
    sort_key = str(keys.get("SK", {}).get("S", ""))
    if record.raw_event.get("eventName") != "INSERT" or not sort_key.startswith(ATTEMPT_PREFIX):
        return  # the event source's filter drops these
    customer_id = str(keys["PK"]["S"]).removeprefix(CUSTOMER_PREFIX)
    outcome = charge_attempt(
        customer_id,
        int(sort_key.removeprefix(ATTEMPT_PREFIX)),
        store=default_top_up_store(),
        orders=default_order_store(),
        gateway=GATEWAY,
        publish=publish,
        recovery_urls=recovery_urls(),
        credit_found=credit_found,
        billing=BillingSettings.from_environment(),
    )
    logger.info(
        "auto top-up attempt charged", extra={"customer_id": customer_id, "outcome": outcome}
    )


@publish_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return process_partial_response(
        event=event, record_handler=charge_record, processor=processor, context=context
    )
