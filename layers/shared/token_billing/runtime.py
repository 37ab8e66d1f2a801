"""Process-wide AWS clients, created once per Lambda execution environment.

Endpoints come from boto3's own configuration (`AWS_ENDPOINT_URL_DYNAMODB` points the same
code at DynamoDB Local), so nothing here knows whether it runs in AWS or on a laptop.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from typing import TYPE_CHECKING

from token_billing.store.holds import HoldLedger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from token_billing.store.history import History
    from token_billing.store.orders import OrderStore
    from token_billing.store.top_up_store import TopUpStore
    from token_billing.store.usage_aggregates import UsageAggregates
    from token_billing.store.vm_limits import VmLimitsCache, VmLimitStore
    from token_billing.store.vm_usage import VmUsageAggregates

# Each store is imported where it is first asked for: the debit function, whose cold start
# budget is a few milliseconds, never loads the order, history or aggregate modules.


def table_name() -> str:
    name = os.environ.get("TABLE_NAME")
    if not name:
        raise RuntimeError("TABLE_NAME is not set: the function's template environment sets it")
    return name


@cache
def dynamodb_client() -> DynamoDBClient:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=2,
        read_timeout=5,
        tcp_keepalive=True,
        max_pool_connections=32,
    )
    return boto3.client("dynamodb", config=config)


@cache
def default_ledger() -> HoldLedger:
    return HoldLedger(dynamodb_client(), table_name())


@cache
def default_order_store() -> OrderStore:
    from token_billing.store.orders import OrderStore

    return OrderStore(dynamodb_client(), table_name())


@cache
def default_history() -> History:
    from token_billing.store.history import History

    return History(dynamodb_client(), table_name())


@cache
def default_usage_aggregates() -> UsageAggregates:
    from token_billing.store.usage_aggregates import UsageAggregates

    return UsageAggregates(dynamodb_client(), table_name())


@cache
def default_top_up_store() -> TopUpStore:
    from token_billing.store.top_up_store import TopUpStore

    return TopUpStore(dynamodb_client(), table_name())


@cache
def default_vm_limit_store() -> VmLimitStore:
    from token_billing.store.vm_limits import VmLimitStore

    return VmLimitStore(dynamodb_client(), table_name())


@cache
def default_vm_limits() -> VmLimitsCache:
    """This container's copy of customers' VM limits (the debit function's), read through
    the store at most once per customer per refresh period."""
    from token_billing.store.vm_limits import VmLimitsCache

    return VmLimitsCache(default_vm_limit_store())


@cache
def default_vm_usage() -> VmUsageAggregates:
    from token_billing.store.vm_usage import VmUsageAggregates

    return VmUsageAggregates(dynamodb_client(), table_name())


def reset() -> None:
    """Forget cached clients (tests switch between moto and DynamoDB Local)."""
    from token_billing.integrations.eventbridge import events_client

    default_ledger.cache_clear()
    default_order_store.cache_clear()
    default_history.cache_clear()
    default_usage_aggregates.cache_clear()
    default_top_up_store.cache_clear()
    default_vm_limit_store.cache_clear()
    default_vm_limits.cache_clear()
    default_vm_usage.cache_clear()
    dynamodb_client.cache_clear()
    events_client.cache_clear()
    # Only purchase and webhook load stripe; clear its client where it was loaded, without
    # importing the SDK into every other function's graph.
    stripe_gateway = sys.modules.get("token_billing.integrations.stripe_gateway")
    if stripe_gateway is not None:
        stripe_gateway.forget_clients()
