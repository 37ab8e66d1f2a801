"""Powertools Tracer (the AWS X-Ray SDK underneath) next to Logger, Metrics and a DynamoDB
client; no resolver."""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="reference")
metrics = Metrics(namespace="Reference", service="reference")
tracer = Tracer(service="reference")
client = boto3.client("dynamodb")
