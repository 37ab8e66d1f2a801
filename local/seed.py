"""Give a customer tokens in the dev server's DynamoDB Local, through the real ledger.

    .venv/bin/python -m local.seed --customer cust_demo --tokens 1000 [--ddb-port 8000]

A grant is an ordinary ledger entry, so the balance it makes is one the debit path and the
reconciliation checks accept; writing items by hand would not be.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence

from local import dynamodb_local
from local.dynamodb_local import port_in_use
from local.environment import DEFAULT_DDB_PORT, SHARED_LAYER
from local.lambda_runtime import ensure_on_path

TABLE_NAME = "LedgerTable"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.seed", description=__doc__)
    parser.add_argument("--customer", required=True, help="customer id, e.g. cust_demo")
    parser.add_argument("--tokens", required=True, help="whole or decimal tokens, e.g. 1000")
    parser.add_argument("--ddb-port", type=int, default=DEFAULT_DDB_PORT)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_on_path(SHARED_LAYER)
    # After the path change: token_billing lives in the layer folder.
    import boto3
    from botocore.exceptions import ClientError

    from token_billing.core.units import QuantityError, format_tokens, tokens_to_mt
    from token_billing.store.ledger import Ledger

    try:
        amount_mt = tokens_to_mt(args.tokens)
    except QuantityError as error:
        print(f"--tokens: {error}", file=sys.stderr)
        return 2
    if amount_mt <= 0:
        print("--tokens must be greater than zero", file=sys.stderr)
        return 2
    if not port_in_use(args.ddb_port):
        print(
            f"Nothing listens on 127.0.0.1:{args.ddb_port}: start the dev server first "
            "(`make dev`), or pass the --ddb-port it uses.",
            file=sys.stderr,
        )
        return 1
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{args.ddb_port}",
        region_name=dynamodb_local.LOCAL_REGION,
        aws_access_key_id=dynamodb_local.LOCAL_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=dynamodb_local.LOCAL_CREDENTIALS["aws_secret_access_key"],
    )
    ledger = Ledger(client, TABLE_NAME)
    try:
        entry = ledger.grant(
            customer_id=args.customer,
            idempotency_key=f"seed-{uuid.uuid4()}",
            amount_mt=amount_mt,
            reason="local seed",
            granted_by="local.seed",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        print(
            f"Table {TABLE_NAME} does not exist on port {args.ddb_port}: is that the dev "
            "server's DynamoDB Local?",
            file=sys.stderr,
        )
        return 1
    account = ledger.get_account(args.customer)
    assert account is not None, "the grant just created the account"
    print(
        f"Granted {format_tokens(amount_mt)} tokens to {args.customer} ({entry.txn_id}). "
        f"Balance: {format_tokens(account.balance_mt)} tokens, "
        f"available: {format_tokens(account.available_mt)}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
