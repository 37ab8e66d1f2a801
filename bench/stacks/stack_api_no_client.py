"""DESIGN's HTTP API stack without AWS: the resolver with pydantic validation, one validated
route and model, Logger and Metrics, no boto3 (what the packages function is built on)."""

from typing import Annotated

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel

app = APIGatewayHttpResolver(enable_validation=True)
logger = Logger(service="reference")
metrics = Metrics(namespace="Reference", service="reference")


class ItemOut(BaseModel):
    item_id: str
    amount_mt: int


@app.get("/items/<item_id>")
def get_item(item_id: Annotated[str, Path(min_length=1, max_length=64)]) -> ItemOut:
    return ItemOut(item_id=item_id, amount_mt=0)
