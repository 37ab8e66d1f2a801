"""VM agent credentials: who may spend which customer's tokens from which VM.

`VmAgentDebitPolicy` lets a role invoke the debit function, nothing more: without this, any
agent holding it could debit, hold or release *any* customer's tokens. The platform's
control plane mints one credential per VM, bound to (customer, vm_id, expiry), and the
agent presents it with every op; the debit function refuses any op whose customer or VM
disagrees, before it sends DynamoDB anything.

    tbvm1.<key id>.<claims>.<mac>
    claims = base64url(JSON {"sub": customer, "vm": vm_id, "iat": epoch s, "exp": epoch s})
    mac    = base64url(HMAC-SHA256(key, "tbvm1.<key id>.<claims>"))

HMAC-SHA256 under a key the debit function reads once per container (Secrets Manager):
verifying costs a few microseconds, no DynamoDB request and no network round trip. The
key id names the key, so a rotation adds a key, makes it current, and drops the old one
once every credential minted under it has expired.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
from collections.abc import Mapping

from token_billing.core.errors import Forbidden, Unauthorized
from token_billing.store.table_layout import CUSTOMER_ID_PATTERN, IDEMPOTENCY_KEY_PATTERN

CREDENTIAL_VERSION = "tbvm1"
CREDENTIAL_MAX_CHARS = 1_024
KEY_ID_MAX_CHARS = 32
# A VM's credential lives at most a day; agents refresh well before it runs out.
CREDENTIAL_TTL_MAX_S = 24 * 3600
CREDENTIAL_TTL_DEFAULT_S = 12 * 3600
# Clocks drift: a credential "issued" a little in the future is still accepted.
CLOCK_SKEW_S = 300
KEY_MIN_BYTES = 32


class CredentialInvalid(Unauthorized):
    """No credential, a malformed or forged one, or one under a key we do not hold."""

    code = "credential_invalid"


class UnknownCredentialKey(CredentialInvalid):
    """A well-formed credential under a key id the key document does not hold: a key made
    current since the document was read, or a forgery. The caller may re-read the keys."""


class CredentialExpired(Unauthorized):
    """A genuine credential past its expiry: the agent asks the control plane for a new one."""

    code = "credential_expired"


class CredentialMismatch(Forbidden):
    """A genuine credential used for another customer or another VM. Nothing moved."""

    code = "credential_mismatch"


# Plain slotted classes, not dataclasses: this module is on the debit function's import
# path, and each @dataclass costs a few hundred microseconds of its cold start.
class AgentCredential:
    """What a verified credential binds: the customer, the VM, the expiry (epoch s)."""

    __slots__ = ("customer_id", "expires_at_s", "key_id", "vm_id")

    def __init__(self, customer_id: str, vm_id: str, expires_at_s: int, key_id: str) -> None:
        self.customer_id = customer_id
        self.vm_id = vm_id
        self.expires_at_s = expires_at_s
        self.key_id = key_id


class CredentialKeys:
    """The HMAC keys by id, and the one new credentials are minted with."""

    __slots__ = ("current", "keys")

    def __init__(self, current: str, keys: Mapping[str, bytes]) -> None:
        assert current in keys, "the current key id names one of the keys"
        assert all(len(key) >= KEY_MIN_BYTES for key in keys.values()), "keys too short"
        self.current = current
        self.keys = dict(keys)

    @classmethod
    def from_json(cls, text: str) -> CredentialKeys:
        """`{"current": "k2", "k1": "<secret>", "k2": "<secret>"}`, the secret's layout."""
        return _parse_keys(text)


@functools.lru_cache(maxsize=4)
def _parse_keys(text: str) -> CredentialKeys:
    """Parsed once per document: every op of a container verifies with the same keys."""
    document = json.loads(text)
    if not isinstance(document, dict) or not isinstance(document.get("current"), str):
        raise ValueError('the key document needs "current" naming one of its keys')
    keys = {
        str(key_id): str(secret).encode()
        for key_id, secret in document.items()
        if key_id != "current"
    }
    if document["current"] not in keys:
        raise ValueError('"current" names no key of the document')
    short = [key_id for key_id, key in keys.items() if len(key) < KEY_MIN_BYTES]
    if short:
        raise ValueError(f"keys shorter than {KEY_MIN_BYTES} bytes: {', '.join(short)}")
    return CredentialKeys(document["current"], keys)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, signed: str) -> bytes:
    return hmac.new(key, signed.encode(), hashlib.sha256).digest()


def mint_credential(
    keys: CredentialKeys, *, customer_id: str, vm_id: str, now_s: int, ttl_s: int
) -> str:
    """A credential for one VM of one customer, valid `ttl_s` seconds from `now_s`."""
    if not CUSTOMER_ID_PATTERN.fullmatch(customer_id):
        raise ValueError("customer_id: 1-64 letters, digits, _ and -")
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(vm_id):
        raise ValueError("vm_id: 1-128 letters, digits and _.:/+=-")
    if not 0 < ttl_s <= CREDENTIAL_TTL_MAX_S:
        raise ValueError(f"ttl_s must be between 1 and {CREDENTIAL_TTL_MAX_S}")
    claims = {"sub": customer_id, "vm": vm_id, "iat": now_s, "exp": now_s + ttl_s}
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signed = f"{CREDENTIAL_VERSION}.{keys.current}.{body}"
    return f"{signed}.{_b64(_mac(keys.keys[keys.current], signed))}"


def verify_credential(token: object, keys: CredentialKeys, *, now_s: int) -> AgentCredential:
    """The credential's binding, if `token` was minted under one of `keys` and has not
    expired; CredentialInvalid or CredentialExpired otherwise. Pure: no I/O."""
    if not isinstance(token, str) or not token:
        raise CredentialInvalid(
            "credential is required: the VM's agent credential from the control plane"
        )
    parts = token.split(".")
    if len(token) > CREDENTIAL_MAX_CHARS or len(parts) != 4 or parts[0] != CREDENTIAL_VERSION:
        raise CredentialInvalid("credential is not a VM agent credential")
    _, key_id, body, mac_text = parts
    if len(key_id) > KEY_ID_MAX_CHARS:
        raise CredentialInvalid("credential names a key id longer than any this service mints")
    key = keys.keys.get(key_id)
    if key is None:
        raise UnknownCredentialKey("credential was minted under a key this service does not hold")
    try:
        mac = _unb64(mac_text)
    except (binascii.Error, ValueError):
        raise CredentialInvalid("credential signature is malformed") from None
    # Compare the MAC before reading the claims: nothing forged is parsed.
    if not hmac.compare_digest(mac, _mac(key, f"{CREDENTIAL_VERSION}.{key_id}.{body}")):
        raise CredentialInvalid("credential signature does not verify")
    claims = json.loads(_unb64(body))
    customer_id, vm_id = claims.get("sub"), claims.get("vm")
    expires_at_s, issued_at_s = claims.get("exp"), claims.get("iat")
    if not (
        isinstance(customer_id, str)
        and isinstance(vm_id, str)
        and isinstance(expires_at_s, int)
        and isinstance(issued_at_s, int)
    ):
        raise CredentialInvalid("credential claims are incomplete")
    if issued_at_s > now_s + CLOCK_SKEW_S:
        raise CredentialInvalid("credential is issued in the future")
    if expires_at_s <= now_s:
        raise CredentialExpired("credential has expired: the agent needs a fresh one")
    return AgentCredential(customer_id, vm_id, expires_at_s, key_id)


def _vm_ids_named(payload: Mapping[str, object]) -> set[object]:
    named: set[object] = set()
    if "vm_id" in payload:
        named.add(payload["vm_id"])
    usage = payload.get("usage")
    if isinstance(usage, list):
        for line in usage:
            if isinstance(line, Mapping) and "vm_id" in line:
                named.add(line["vm_id"])
    return named


def bind_to_credential(
    credential: AgentCredential, payload: Mapping[str, object]
) -> dict[str, object]:
    """The op's payload, if it acts for the credential's customer and VM only: its
    `customer_id` must be the credential's, every `vm_id` it names (the hold's, each usage
    line's) the credential's VM. A hold or renew that names no VM is placed for it."""
    if payload.get("customer_id") != credential.customer_id:
        raise CredentialMismatch("this credential is not for that customer; nothing was changed")
    if _vm_ids_named(payload) - {credential.vm_id}:
        raise CredentialMismatch("this credential is not for that VM; nothing was changed")
    bound = dict(payload)
    if bound.get("op") in ("hold", "renew"):
        bound.setdefault("vm_id", credential.vm_id)
    return bound


def check_hold_vm(credential_vm_id: str | None, hold_vm_id: str | None) -> None:
    """A hold is settled, renewed or released only from the VM it was placed for."""
    if credential_vm_id is not None and hold_vm_id != credential_vm_id:
        raise CredentialMismatch("this hold belongs to another VM; nothing was changed")
