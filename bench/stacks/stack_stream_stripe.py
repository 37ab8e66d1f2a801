"""A stream consumer that pays with Stripe: a DynamoDB client, Powertools Logger, Metrics
and the batch processor for DynamoDB stream records, and a `stripe.StripeClient` (what the
auto top-up charger is built on)."""

import boto3
import stripe
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

logger = Logger(service="reference")
metrics = Metrics(namespace="Reference", service="reference")
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
client = boto3.client("dynamodb")
stripe_client = stripe.StripeClient("sk_test_reference")
