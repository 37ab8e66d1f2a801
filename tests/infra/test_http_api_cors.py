"""The HTTP API's CORS allows every method its routes serve, and the dev server answers
preflights from the same list: a browser app on another origin (the hosted app on
CloudFront, a Next.js app) can call every route, in AWS as locally."""

from __future__ import annotations

from local import cors
from local.template import load_template

TEMPLATE = load_template()


def template_allow_methods() -> set[str]:
    return {str(method).upper() for method in cors.template_cors_configuration()["AllowMethods"]}


def test_cors_allows_every_method_the_http_api_serves() -> None:
    served = {route.method for route in TEMPLATE.http_routes()}
    assert "ANY" not in served, "an ANY route: list its methods in AllowMethods by hand"
    missing = served - template_allow_methods()
    assert not missing, f"CorsConfiguration.AllowMethods lacks {sorted(missing)}"


def test_cors_allows_put_for_the_auto_top_up_settings() -> None:
    # The route that made this test: the browser refused its PUT from another origin.
    assert any(
        route.method == "PUT" and route.path.endswith("/auto-top-up")
        for route in TEMPLATE.http_routes()
    )
    assert "PUT" in template_allow_methods()


def test_the_dev_server_answers_preflights_with_the_templates_methods() -> None:
    rules = cors.rules_for(("http://127.0.0.1:3001",))
    assert set(rules.allow_methods) == template_allow_methods()
    preflight = dict(rules.preflight("http://127.0.0.1:3001").headers)
    assert set(preflight["Access-Control-Allow-Methods"].split(",")) >= {
        route.method for route in TEMPLATE.http_routes()
    }
