"""The VM agent credential keys, read once per execution environment.

In AWS they are one Secrets Manager secret (AGENT_CREDENTIAL_SECRET_ARN; the stack
generates it) holding `{"current": "k1", "k1": "<secret>"}`. The debit function reads it on
its first op that needs it, then keeps it for KEYS_CACHE_S, so a rotated key is picked up
without a deploy: one GetSecretValue per container per quarter hour, never one per op. A
credential under a key id the cached document does not hold (a key made current since)
makes the container read the document again at once, but at most once per
UNKNOWN_KEY_REREAD_S: credentials with forged key ids cannot turn into a request flood.
Only the local dev server and tests (STAGE=local) may pass the document in
AGENT_CREDENTIAL_KEYS. boto3 is imported on that first read only: the debit function's
import graph, and so its cold start, carries nothing of Secrets Manager.
"""

from __future__ import annotations

import os
import threading
import time

from token_billing.core.errors import ServiceUnavailable

KEYS_CACHE_S = 900
UNKNOWN_KEY_REREAD_S = 60

_lock = threading.Lock()
_cached: tuple[float, str] | None = None
_last_reread: float | None = None  # when an unknown key id last made us read again


def credentials_required() -> bool:
    """On unless the template's RequireAgentCredentials says "false" (trusted hosts only)."""
    return os.environ.get("REQUIRE_AGENT_CREDENTIALS", "true").strip().lower() != "false"


def _read_keys() -> str:
    arn = os.environ.get("AGENT_CREDENTIAL_SECRET_ARN")
    if arn:
        import boto3

        secret = boto3.client("secretsmanager").get_secret_value(SecretId=arn)
        return str(secret["SecretString"])
    if os.environ.get("STAGE") == "local" and os.environ.get("AGENT_CREDENTIAL_KEYS"):
        return os.environ["AGENT_CREDENTIAL_KEYS"]
    raise RuntimeError(
        "AGENT_CREDENTIAL_SECRET_ARN is not set: agent credential keys come from Secrets Manager"
    )


def credential_keys_document(*, now: float | None = None) -> str:
    """The keys' JSON document (see domain.agent_credentials.CredentialKeys), from the
    container's cache when fresh."""
    moment = time.monotonic() if now is None else now
    with _lock:
        if _cached is not None and moment - _cached[0] < KEYS_CACHE_S:
            return _cached[1]
        return _read_and_cache(moment)


def reread_for_unknown_key(*, now: float | None = None) -> str | None:
    """The key document read again because a credential named a key id it lacks; None when
    the last such read was under UNKNOWN_KEY_REREAD_S ago (the cached document stands)."""
    global _last_reread
    moment = time.monotonic() if now is None else now
    with _lock:
        if _last_reread is not None and moment - _last_reread < UNKNOWN_KEY_REREAD_S:
            return None
        _last_reread = moment
        return _read_and_cache(moment)


def _read_and_cache(moment: float) -> str:
    global _cached
    try:
        keys = _read_keys()
    except RuntimeError:
        raise
    except Exception as error:  # the secret's service: a retry may succeed
        raise ServiceUnavailable(
            "could not read the agent credential keys; retry with the same key"
        ) from error
    _cached = (moment, keys)
    return keys


def forget_keys() -> None:
    """Drop the cached keys (tests switch keys between cases)."""
    global _cached, _last_reread
    with _lock:
        _cached = None
        _last_reread = None
