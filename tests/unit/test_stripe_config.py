"""Stripe keys come from Secrets Manager through Powertools Parameters; only the local dev
server may pass them as environment variables."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from token_billing.integrations.stripe_config import stripe_settings


@pytest.fixture
def clean_env() -> Iterator[None]:
    saved = dict(os.environ)
    for name in ("STRIPE_SECRET_ARN", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STAGE"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_keys_are_read_from_the_secret(clean_env: None) -> None:
    with mock_aws():
        arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="token-billing/stripe",
            SecretString=json.dumps({"secret_key": "sk_test_1", "webhook_secret": "whsec_1"}),
        )["ARN"]
        os.environ.update(STRIPE_SECRET_ARN=arn, STRIPE_SECRET_KEY="sk_live_ignored", STAGE="prod")
        settings = stripe_settings()
    assert (settings.secret_key, settings.webhook_secret, settings.api_base) == (
        "sk_test_1",
        "whsec_1",
        None,
    )


def test_plain_environment_variables_are_refused_outside_local(clean_env: None) -> None:
    os.environ.update(STAGE="prod", STRIPE_SECRET_KEY="sk_live_x", STRIPE_WEBHOOK_SECRET="whsec_x")
    with pytest.raises(RuntimeError, match="Secrets Manager"):
        stripe_settings()


def test_a_rolled_key_reaches_the_next_request_within_the_cache_time(clean_env: None) -> None:
    """The secret is re-read after SECRET_CACHE_S (Powertools' cache); a changed key builds
    a new client at once, the old one is never used again."""
    from aws_lambda_powertools.utilities import parameters

    from token_billing.integrations import stripe_config, stripe_gateway

    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(
            Name="token-billing/stripe",
            SecretString=json.dumps({"secret_key": "sk_test_old", "webhook_secret": "whsec_1"}),
        )["ARN"]
        os.environ.update(STRIPE_SECRET_ARN=arn, STAGE="prod")
        parameters.clear_caches()  # type: ignore[no-untyped-call]
        stripe_gateway.forget_clients()
        first = stripe_gateway.stripe_client()
        assert first._requestor.api_key == "sk_test_old"
        secrets.put_secret_value(
            SecretId=arn,
            SecretString=json.dumps({"secret_key": "sk_test_new", "webhook_secret": "whsec_1"}),
        )
        # Within the cache time the container may still use the old key...
        assert stripe_gateway.stripe_client() is first
        assert stripe_config.SECRET_CACHE_S <= 300
        # ...and once it has passed, the next request reads the secret and uses the new one.
        parameters.clear_caches()  # type: ignore[no-untyped-call]  # = SECRET_CACHE_S passing
        rolled = stripe_gateway.stripe_client()
        assert rolled._requestor.api_key == "sk_test_new"
        assert stripe_gateway.off_session_client()._requestor.api_key == "sk_test_new"
        assert stripe_gateway.stripe_client() is rolled
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    stripe_gateway.forget_clients()
