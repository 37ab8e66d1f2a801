"""tools/publish_web: the hosted app's config.json from the stack's outputs (no AWS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.publish_web import files_to_upload, web_config

OUTPUTS = {
    "ApiUrl": "https://abc123.execute-api.us-east-1.amazonaws.com",
    "WebAppUrl": "https://d111111abcdef8.cloudfront.net",
    "WebAppBucketName": "token-billing-dev-webappbucket-1a2b3c",
    "WebDistributionId": "E2EXAMPLE",
    "UserPoolId": "us-east-1_AbCdEf",
    "UserPoolClientId": "client123",
    "HostedSignInDomain": "https://billing-demo.auth.us-east-1.amazoncognito.com",
    "WebSocketUrl": "wss://def456.execute-api.us-east-1.amazonaws.com/dev",
}


def test_config_names_the_api_and_the_hosted_sign_in_with_its_callback() -> None:
    assert web_config(OUTPUTS, "us-east-1") == {
        "apiBaseUrl": OUTPUTS["ApiUrl"],
        "socketUrl": OUTPUTS["WebSocketUrl"],
        "identity": {
            "provider": "cognito",
            "region": "us-east-1",
            "userPoolId": "us-east-1_AbCdEf",
            "clientId": "client123",
            "domain": OUTPUTS["HostedSignInDomain"],
            "redirectUri": "https://d111111abcdef8.cloudfront.net/auth/callback",
            "scopes": ["openid", "email"],
        },
    }


@pytest.mark.parametrize("missing", ["WebAppUrl", "HostedSignInDomain"])
def test_a_stack_without_the_web_app_or_hosted_sign_in_is_refused(missing: str) -> None:
    outputs = {name: value for name, value in OUTPUTS.items() if name != missing}
    with pytest.raises(SystemExit, match=missing):
        web_config(outputs, "us-east-1")


def test_uploads_every_built_file_but_the_local_config(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "assets" / "app-1a2b.js").write_text("")
    (tmp_path / "assets" / "app-1a2b.css").write_text("")
    uploads = [(key, content_type) for _, key, content_type in files_to_upload(tmp_path)]
    assert uploads == [
        ("assets/app-1a2b.css", "text/css"),
        ("assets/app-1a2b.js", "text/javascript"),
        ("index.html", "text/html"),
    ]


def test_an_unbuilt_app_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="make web"):
        files_to_upload(tmp_path)
