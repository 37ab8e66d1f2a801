"""The packages function with the sample API Gateway v2 events from events/packages/."""

import json
from typing import Any

from tests.conftest import FakeLambdaContext, load_event


def call(name: str, context: FakeLambdaContext) -> tuple[int, dict[str, Any]]:
    import packages_handler

    response = packages_handler.lambda_handler(load_event(name), context)
    return response["statusCode"], json.loads(response["body"])


def test_list_packages(lambda_context: FakeLambdaContext) -> None:
    status, body = call("packages/list-packages.json", lambda_context)
    assert status == 200
    assert body["config"] == {"stripe_publishable_key": None, "currency": "usd"}
    growth = {package["id"]: package for package in body["data"]}["growth"]
    assert growth == {
        "object": "token_package",
        "id": "growth",
        "name": "Growth",
        "price_cents": 4_900,
        "currency": "usd",
        "tokens": "6000",
        "tokens_mt": 6_000_000,
        "bonus": "500",
        "bonus_mt": 500_000,
        "total_tokens": "6500",
        "total_tokens_mt": 6_500_000,
        "estimated_hours": 65,
        "estimated_hours_exact": "65",
    }


def test_list_rates(lambda_context: FakeLambdaContext) -> None:
    status, body = call("packages/list-rates.json", lambda_context)
    assert status == 200
    assert {rate["action"]: rate["tokens_per_unit"] for rate in body["data"]} == {
        "vm_runtime": "1",
        "screenshot": "0.5",
        "api_call": "0.1",
        "ai_message": "0.2",
        "file_upload": "1",
    }
    assert body["low_balance_threshold"] == "500"


def test_usage_estimate(lambda_context: FakeLambdaContext) -> None:
    status, body = call("packages/usage-estimate.json", lambda_context)
    assert status == 200
    # per day: 120 min + 40 screenshots + 200 AI messages = 120 + 20 + 40 = 180 tokens
    assert body["tokens_per_month"] == "5400"
    assert (body["recommended_package"]["id"], body["packs_needed"]) == ("growth", 1)


def test_usage_estimate_with_unknown_action_is_a_400(lambda_context: FakeLambdaContext) -> None:
    status, body = call("packages/usage-estimate-invalid.json", lambda_context)
    assert status == 400
    assert body["error"]["code"] == "invalid_request"
    assert "teleport" in body["error"]["message"]
