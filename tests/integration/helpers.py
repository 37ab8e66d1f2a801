"""Small helpers integration tests share."""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

from local.devserver import DevServer
from tests import stripe_events
from token_billing import runtime
from token_billing.store.ledger import Ledger
from token_billing.store.records import Account

APP = "https://app.example.com"  # the web app's origin in the payment tests


def fund(ledger: Ledger, customer_id: str, amount_mt: int, key: str = "fund") -> None:
    ledger.grant(
        customer_id=customer_id,
        idempotency_key=key,
        amount_mt=amount_mt,
        reason="test funding",
        granted_by="tests",
    )


def assert_consistent(ledger: Ledger, customer_id: str) -> Account:
    """Invariants 1 and 2: balance = sum of entries; held = sum of active holds;
    available = balance - held."""
    from token_billing.store.history import History

    account = ledger.get_account(customer_id)
    assert account is not None
    assert account.balance_mt == ledger.sum_entries_mt(customer_id)
    _, holds = History(ledger._client, ledger._table).account_with_holds(customer_id)
    assert account.held_mt == sum(hold.amount_mt for hold in holds)
    assert account.available_mt == account.balance_mt - account.held_mt
    return account


def http_json(
    base_url: str,
    method: str,
    path: str,
    body: object | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of one real HTTP request to the dev server (loopback only)."""
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            parsed: dict[str, Any] = json.loads(response.read())
            return response.status, parsed
    except urllib.error.HTTPError as error:
        with error:
            parsed = json.loads(error.read())
            return error.code, parsed


def use_local_stripe(server: DevServer) -> None:
    """Point purchase and webhook at the dev server's fake Stripe, with test keys and the
    app's redirect URLs (the local_aws fixture restores the environment after the test)."""
    os.environ.update(
        STAGE="local",
        STRIPE_SECRET_KEY="sk_test_integration",
        STRIPE_WEBHOOK_SECRET=stripe_events.WEBHOOK_SECRET,
        STRIPE_API_BASE=f"{server.url}/_stripe",
        CHECKOUT_REDIRECT_ORIGINS=f"{APP},http://127.0.0.1:3000",
        CHECKOUT_SUCCESS_URL=f"{APP}/billing/success",
        CHECKOUT_CANCEL_URL=f"{APP}/billing/cancel",
        STRIPE_PRICE_IDS="",
    )
    runtime.reset()


def dev_server_client(service: str, server: DevServer, *, read_timeout_s: float) -> Any:
    """A boto3 client for an AWS API the dev server answers (Lambda Invoke, PutEvents),
    with dummy credentials and no retries, so a failure shows on the first call."""
    make: Any = boto3.client  # its stubs type one overload per literal service name
    return make(
        service,
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(connect_timeout=2, read_timeout=read_timeout_s, retries={"max_attempts": 0}),
    )
