"""Unit tests run against moto: the same table definition as template.yaml, in memory."""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from local.template import load_template
from token_billing import runtime
from token_billing.store.ledger import Ledger


@pytest.fixture
def moto_table() -> Iterator[str]:
    saved = dict(os.environ)
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for arguments in load_template().tables().values():
            client.create_table(**arguments)
        os.environ["TABLE_NAME"] = "LedgerTable"
        runtime.reset()
        yield "LedgerTable"
    runtime.reset()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def moto_ledger(moto_table: str) -> Ledger:
    return runtime.default_ledger()
