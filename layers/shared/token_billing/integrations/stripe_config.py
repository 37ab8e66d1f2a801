"""Stripe credentials and endpoints, read once per execution environment.

In AWS they come from one Secrets Manager secret (JSON with `secret_key`,
`webhook_secret`, `publishable_key`) named by STRIPE_SECRET_ARN, read through Powertools
Parameters with a 5-minute cache, so a rotated key is picked up without a deploy. Only the
local dev server (STAGE=local) may pass them as environment variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Imported with the module (during init), though only the AWS path below uses it.
from aws_lambda_powertools.utilities import parameters

SECRET_CACHE_S = 300


@dataclass(frozen=True, slots=True)
class StripeSettings:
    secret_key: str
    webhook_secret: str
    # Only the dev server and tests set this: an offline fake of Stripe's API.
    api_base: str | None = None


def stripe_settings() -> StripeSettings:
    arn = os.environ.get("STRIPE_SECRET_ARN")
    if arn:
        secret = parameters.get_secret(arn, transform="json", max_age=SECRET_CACHE_S)
        assert isinstance(secret, dict)
        return StripeSettings(
            secret_key=str(secret["secret_key"]), webhook_secret=str(secret["webhook_secret"])
        )
    if os.environ.get("STAGE") != "local":
        raise RuntimeError("STRIPE_SECRET_ARN is not set: Stripe keys come from Secrets Manager")
    return StripeSettings(
        secret_key=os.environ["STRIPE_SECRET_KEY"],
        webhook_secret=os.environ["STRIPE_WEBHOOK_SECRET"],
        api_base=os.environ.get("STRIPE_API_BASE") or None,
    )
