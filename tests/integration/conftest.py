"""DynamoDB Local for the whole test session: started once, in memory, stopped at the end.

Tests share the template's tables and stay apart by using their own customer ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from local import dynamodb_local
from token_billing import runtime
from token_billing.ledger import Ledger


@pytest.fixture(scope="session")
def ddb_local() -> Iterator[dynamodb_local.DynamoDBLocal]:
    with dynamodb_local.running() as instance:
        dynamodb_local.create_tables(instance.client())
        yield instance


@pytest.fixture(autouse=True)
def local_aws(ddb_local: dynamodb_local.DynamoDBLocal) -> Iterator[None]:
    """Point boto3, and so the unchanged handlers, at the session's DynamoDB Local."""
    saved = dict(os.environ)
    os.environ.update(dynamodb_local.local_aws_environment(ddb_local.endpoint))
    os.environ["TABLE_NAME"] = "LedgerTable"
    runtime.reset()
    yield
    os.environ.clear()
    os.environ.update(saved)
    runtime.reset()


@pytest.fixture
def ledger(ddb_local: dynamodb_local.DynamoDBLocal) -> Ledger:
    return Ledger(ddb_local.client(), "LedgerTable")
