"""packages: the public catalog (token packs, usage rates) and the usage estimate."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.observability import logger, publish_metrics
from token_billing.domain.catalog import CATALOG_VERSION, CURRENCY, PACKAGES, RATES
from token_billing.domain.estimate import estimate_usage
from token_billing.edge.models.catalog import (
    CheckoutClientConfig,
    PackageListOut,
    PackageOut,
    RateListOut,
    RateOut,
    UsageEstimateIn,
    UsageEstimateOut,
)
from token_billing.edge.resolver import create_resolver

app = create_resolver()


@app.get("/api/v1/token-packages", tags=["catalog"], summary="List token packages")
def list_packages() -> PackageListOut:
    return PackageListOut(
        catalog_version=CATALOG_VERSION,
        data=[PackageOut.of(package, CURRENCY) for package in PACKAGES.values()],
        config=CheckoutClientConfig(
            stripe_publishable_key=os.environ.get("STRIPE_PUBLISHABLE_KEY") or None,
            currency=CURRENCY,
        ),
    )


@app.get("/api/v1/token-rates", tags=["catalog"], summary="List usage rates")
def list_rates() -> RateListOut:
    return RateListOut(
        catalog_version=CATALOG_VERSION, data=[RateOut.of(rate) for rate in RATES.values()]
    )


@app.post("/api/v1/usage-estimate", tags=["catalog"], summary="Estimate monthly usage")
def usage_estimate(profile: UsageEstimateIn) -> UsageEstimateOut:
    raw_lines = [{"action": line.action, "quantity": str(line.quantity)} for line in profile.usage]
    estimate = estimate_usage(raw_lines, profile.period)
    return UsageEstimateOut.of(estimate, CATALOG_VERSION, CURRENCY)


@publish_metrics
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
