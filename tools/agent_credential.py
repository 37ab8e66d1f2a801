"""Mint a VM agent credential: the platform's control plane runs this when it starts a VM
(or calls `mint_credential` the same way), and hands the credential to that VM's agent.

    python -m tools.agent_credential --customer cust_42 --vm vm-7              # make dev
    CREDENTIAL=$(python -m tools.agent_credential --customer cust_42 --vm vm-7 --credential-only)
    python -m tools.agent_credential --customer cust_42 --vm vm-7 --ttl-s 3600 \
        --secret-arn arn:aws:secretsmanager:...:secret:AgentCredentialKeys-...   # AWS

It prints `{"credential", "customer_id", "vm_id", "expires_at"}`. On AWS it reads the keys
from the stack's `AgentCredentialKeys` secret (output `AgentCredentialKeysArn`) with the
caller's own AWS credentials: only the control plane's role may read it, never a VM's.
Locally it uses this checkout's development keys (`.local/agent-credential-keys.json`,
made on first use), the ones the dev server's debit function verifies with.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from local.template import ROOT
from token_billing.domain.agent_credentials import (
    CREDENTIAL_TTL_DEFAULT_S,
    CREDENTIAL_TTL_MAX_S,
    CredentialKeys,
    mint_credential,
)

LOCAL_KEYS_PATH = ROOT / ".local" / "agent-credential-keys.json"


def local_keys_document(path: Path = LOCAL_KEYS_PATH) -> str:
    """This checkout's own development keys, made on first use (never committed)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"current": "local1", "local1": secrets.token_urlsafe(48)}))
        path.chmod(0o600)
    return path.read_text()


def aws_keys_document(secret_arn: str) -> str:
    import boto3

    return str(boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])


def mint(
    customer_id: str,
    vm_id: str,
    *,
    ttl_s: int = CREDENTIAL_TTL_DEFAULT_S,
    keys_document: str | None = None,
    now_s: int | None = None,
) -> dict[str, str]:
    keys = CredentialKeys.from_json(keys_document or local_keys_document())
    issued = int(time.time()) if now_s is None else now_s
    token = mint_credential(keys, customer_id=customer_id, vm_id=vm_id, now_s=issued, ttl_s=ttl_s)
    expires = datetime.fromtimestamp(issued + ttl_s, UTC).isoformat().replace("+00:00", "Z")
    return {"credential": token, "customer_id": customer_id, "vm_id": vm_id, "expires_at": expires}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.agent_credential", description=__doc__)
    parser.add_argument("--customer", required=True)
    parser.add_argument("--vm", required=True, help="the VM's id, as its agent names it")
    parser.add_argument(
        "--ttl-s", type=int, default=CREDENTIAL_TTL_DEFAULT_S, help=f"<= {CREDENTIAL_TTL_MAX_S}"
    )
    parser.add_argument("--secret-arn", help="the stack's AgentCredentialKeys secret (AWS)")
    parser.add_argument(
        "--credential-only",
        action="store_true",
        help="print the credential alone, for `CREDENTIAL=$(...)` in a shell script",
    )
    args = parser.parse_args(argv)
    document = aws_keys_document(args.secret_arn) if args.secret_arn else None
    try:
        minted = mint(args.customer, args.vm, ttl_s=args.ttl_s, keys_document=document)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(minted["credential"] if args.credential_only else json.dumps(minted))
    return 0


if __name__ == "__main__":
    sys.exit(main())
