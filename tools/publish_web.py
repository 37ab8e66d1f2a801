"""Publish the built web app (web/demo-dist) to the stack's bucket with a config.json made from
the stack's outputs, then invalidate CloudFront's copies of the two files it does not
cache by hash. Needs AWS credentials; `make publish-web STAGE=dev|prod` runs it.

    python -m tools.publish_web STACK_NAME [--dry-run]
"""

from __future__ import annotations

import json
import mimetypes
import sys
import time
from pathlib import Path
from typing import Any

from local.template import ROOT

DIST = ROOT / "web" / "demo-dist"
# Hashed bundles never change under one name; these two do, and CloudFront caches neither.
UNHASHED = ("index.html", "config.json")
# The bundle's own types, whatever this machine's /etc/mime.types says.
CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".map": "application/json",
}


def web_config(outputs: dict[str, str], region: str) -> dict[str, Any]:
    """The app's /config.json for a stack: its API and, with hosted sign-in, its user pool."""
    missing = {"ApiUrl", "WebAppUrl", "WebAppBucketName"} - set(outputs)
    if missing:
        raise SystemExit(
            f"the stack has no {', '.join(sorted(missing))} output: DeployWebApp=true?"
        )
    if "HostedSignInDomain" not in outputs:
        raise SystemExit(
            "the stack has no hosted sign-in (HostedSignInDomain): deploy with its own user "
            "pool (JwtIssuer empty) and a CognitoDomainPrefix"
        )
    return {
        "apiBaseUrl": outputs["ApiUrl"],
        # The live balance socket (issue 14); "" (a stack without it) makes the pages poll.
        "socketUrl": outputs.get("WebSocketUrl", ""),
        "identity": {
            "provider": "cognito",
            "region": region,
            "userPoolId": outputs["UserPoolId"],
            "clientId": outputs["UserPoolClientId"],
            "domain": outputs["HostedSignInDomain"],
            "redirectUri": f"{outputs['WebAppUrl']}/auth/callback",
            "scopes": ["openid", "email"],
        },
    }


def files_to_upload(dist: Path) -> list[tuple[Path, str, str]]:
    """(file, key, content type) for every built file but the local config.json."""
    if not (dist / "index.html").is_file():
        raise SystemExit(f"{dist} has no index.html: run `make web` first")
    found = []
    for path in sorted(dist.rglob("*")):
        key = path.relative_to(dist).as_posix()
        if path.is_file() and key != "config.json":
            content_type = CONTENT_TYPES.get(path.suffix) or (
                mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            )
            found.append((path, key, content_type))
    return found


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def main(argv: list[str]) -> int:
    import boto3

    stack_name, *flags = argv
    session = boto3.session.Session()
    region = session.region_name
    if not region:
        raise SystemExit("no AWS region configured (AWS_REGION or your profile's region)")
    outputs = stack_outputs(session.client("cloudformation"), stack_name)
    config = web_config(outputs, region)
    bucket = outputs["WebAppBucketName"]
    uploads = files_to_upload(DIST)
    print(f"{stack_name}: {len(uploads)} files and config.json to s3://{bucket}")
    if "--dry-run" in flags:
        print(json.dumps(config, indent=2))
        return 0
    s3: Any = session.client("s3")
    for path, key, content_type in uploads:
        s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})
    s3.put_object(
        Bucket=bucket,
        Key="config.json",
        Body=json.dumps(config, indent=2).encode(),
        ContentType="application/json",
    )
    cloudfront: Any = session.client("cloudfront")
    cloudfront.create_invalidation(
        DistributionId=outputs["WebDistributionId"],
        InvalidationBatch={
            "Paths": {"Quantity": len(UNHASHED), "Items": [f"/{name}" for name in UNHASHED]},
            "CallerReference": f"publish-web-{time.time_ns()}",
        },
    )
    print(f"published: {outputs['WebAppUrl']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
