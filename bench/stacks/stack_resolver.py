"""The HTTP API stack without validation: Powertools' HTTP API resolver, Logger, Metrics and
a DynamoDB client, one route."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

app = APIGatewayHttpResolver()
logger = Logger(service="reference")
metrics = Metrics(namespace="Reference", service="reference")
client = boto3.client("dynamodb")


@app.get("/items/<item_id>")
def get_item(item_id: str) -> dict[str, Any]:
    return {"item_id": item_id}
