"""What every function carries: a DynamoDB client plus Powertools Logger and Metrics."""

import boto3
from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="reference")
metrics = Metrics(namespace="Reference", service="reference")
client = boto3.client("dynamodb")
