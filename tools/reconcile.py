"""`make reconcile`: check every customer's balance, holds and orders against the ledger.
Reports every difference and changes nothing; exits 1 when it finds any.

    .venv/bin/python -m tools.reconcile                       # the dev server's DynamoDB Local
    .venv/bin/python -m tools.reconcile --aws --table <name>   # a deployed table (your AWS creds)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from local.dynamodb_local import LOCAL_CREDENTIALS, LOCAL_REGION
from token_billing.domain.reconcile import (
    reconcile,  # the layer's package: PYTHONPATH=layers/shared
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.reconcile", description=__doc__)
    parser.add_argument("--table", default="LedgerTable")
    parser.add_argument("--endpoint", default="http://127.0.0.1:8000", help="DynamoDB Local")
    parser.add_argument("--aws", action="store_true", help="use AWS, not DynamoDB Local")
    args = parser.parse_args(argv)
    import boto3

    if args.aws:
        client = boto3.client("dynamodb")
    else:
        client = boto3.client(
            "dynamodb",
            endpoint_url=args.endpoint,
            region_name=LOCAL_REGION,
            aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
        )
    report = reconcile(client, args.table)
    for finding in report.findings:
        print(finding.line())
    print(
        f"{report.customers} customers, {report.items} items checked: "
        + ("no differences" if report.clean else f"{len(report.findings)} difference(s)")
    )
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
