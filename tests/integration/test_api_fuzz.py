"""Hypothesis against every HTTP route, through the dev server's routing and JWT check
into the real handlers on DynamoDB Local: whatever arrives, no 5xx, and every reply fits
the OpenAPI schema (a model for 2xx, the one error shape otherwise)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from local import identity
from local.devserver import DevServer
from tests.integration.helpers import fund, use_local_stripe
from token_billing.edge.models.auto_top_up import AutoTopUpOut
from token_billing.edge.models.balances import (
    BalanceOut,
    DashboardOut,
    GrantOut,
    OrderListOut,
    TransactionListOut,
)
from token_billing.edge.models.catalog import PackageListOut, RateListOut, UsageEstimateOut
from token_billing.edge.models.purchase import PurchaseOut
from token_billing.store.ledger import Ledger

pytestmark = pytest.mark.integration
CUSTOMER = "cust_fuzz"
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("GET", "/api/v1/token-packages"): PackageListOut,
    ("GET", "/api/v1/token-rates"): RateListOut,
    ("POST", "/api/v1/usage-estimate"): UsageEstimateOut,
    ("GET", "/api/v1/customers/{id}/tokens"): BalanceOut,
    ("GET", "/api/v1/customers/{id}/tokens/transactions"): TransactionListOut,
    ("GET", "/api/v1/customers/{id}/tokens/orders"): OrderListOut,
    ("GET", "/api/v1/customers/{id}/dashboard"): DashboardOut,
    ("POST", "/api/v1/customers/{id}/tokens/grants"): GrantOut,
    ("POST", "/api/v1/customers/{id}/tokens/purchase"): PurchaseOut,
    ("GET", "/api/v1/customers/{id}/tokens/auto-top-up"): AutoTopUpOut,
    ("PUT", "/api/v1/customers/{id}/tokens/auto-top-up"): AutoTopUpOut,
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "package_id",
    "success_url",
    "cancel_url",
    "amount",
    "reason",
    "idempotency_key",
    "usage",
    "period",
    "action",
    "quantity",
    "save_card",
    "enabled",
    "threshold",
    "target",
    "max_charges_per_day",
    "max_cents_per_month",
    "consent_text_version",
]
bodies = st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5),
    st.fixed_dictionaries(
        {
            "usage": st.lists(
                st.fixed_dictionaries(
                    {
                        "action": st.sampled_from(["vm_runtime", "api_call", "x"]),
                        "quantity": json_values,
                    }
                ),
                max_size=3,
            )
        }
    ),
    st.fixed_dictionaries({"package_id": st.sampled_from(["starter", "growth", "pro", "nope"])}),
    st.fixed_dictionaries({"amount": st.text(max_size=12), "reason": st.text(max_size=30)}),
    st.fixed_dictionaries(
        {
            "enabled": st.booleans(),
            "package_id": st.sampled_from(["starter", "growth", "nope"]),
            "threshold": st.sampled_from(["0", "500", "1999.9", "-1", "1e3", "99999999999"]),
            "max_cents_per_month": st.integers(-5, 2_000_000),
            "consent_text_version": st.sampled_from(["2026-12-01", "old"]),
        }
    ),
)
queries = st.dictionaries(
    st.sampled_from(["limit", "cursor", "kind", "since", "until", "x"]),
    st.one_of(
        st.text(max_size=30),
        st.integers(-5, 500).map(str),
        st.sampled_from(["usage", "grant,usage", "2026-01-01T00:00:00Z"]),
    ),
    max_size=4,
)
ids = st.one_of(st.just(CUSTOMER), st.text(alphabet="abcAZ09_-.%~ ", min_size=1, max_size=70))


@pytest.fixture(autouse=True)
def payments_env(dev_server: DevServer, local_aws: None) -> None:
    use_local_stripe(dev_server)


def check(
    server: DevServer,
    method: str,
    template_path: str,
    customer: str,
    query: dict[str, str],
    body: Any,
    token: str | None,
) -> None:
    path = template_path.replace("{id}", customer)
    headers = [("content-type", "application/json")]
    if token:
        headers.append(("authorization", f"Bearer {token}"))
    raw = b"" if body is None else json.dumps(body).encode()
    response = server.http_api.serve(
        method,
        path,
        query=urlencode(query),
        headers=headers,
        body=raw,
        source_ip="127.0.0.1",
        protocol="HTTP/1.1",
    )
    assert response.status < 500, (method, path, query, body, response.body[:300])
    reply = json.loads(response.body)
    if response.status in (200, 201):
        model = MODELS[(method, template_path)]
        model.model_validate(reply)
    elif response.status == 401 and "error" not in reply:
        assert reply == {"message": "Unauthorized"}  # API Gateway's own answer
    elif response.status == 404 and "error" not in reply:
        assert reply == {"message": "Not Found"}  # no route: API Gateway's own answer
    else:
        assert set(reply) == {"error"}, reply
        assert {"code", "message", "retryable"} <= set(reply["error"]), reply


@pytest.mark.parametrize(("method", "template_path"), list(MODELS))
def test_no_input_breaks_a_route(
    dev_server: DevServer, ledger: Ledger, method: str, template_path: str
) -> None:
    fund(ledger, CUSTOMER, 100_000, key="fuzz-fund")

    @FUZZ
    @given(
        customer=ids,
        query=queries,
        body=bodies if method in ("POST", "PUT") else st.none(),
        who=st.sampled_from(["customer", "admin", "none", "garbage"]),
    )
    def run(customer: str, query: dict[str, str], body: Any, who: str) -> None:
        token = {
            "customer": identity.mint(customer_id=CUSTOMER),
            "admin": identity.mint(admin=True),
            "none": None,
            "garbage": "not.a.jwt",
        }[who]
        check(dev_server, method, template_path, customer, query, body, token)

    run()
