"""DESIGN's HTTP API stack plus Stripe: the resolver with pydantic validation, Logger,
Metrics, a DynamoDB client and a `stripe.StripeClient` (what purchase and webhook are built
on)."""

from typing import Annotated

import boto3
import stripe
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel

app = APIGatewayHttpResolver(enable_validation=True)
logger = Logger(service="reference")
metrics = Metrics(namespace="Reference", service="reference")
client = boto3.client("dynamodb")
stripe_client = stripe.StripeClient("sk_test_reference")


class ItemOut(BaseModel):
    item_id: str
    amount_mt: int


@app.get("/items/<item_id>")
def get_item(item_id: Annotated[str, Path(min_length=1, max_length=64)]) -> ItemOut:
    return ItemOut(item_id=item_id, amount_mt=0)
