"""The usage actions and the request rules the debit function enforces, as this package's
own copy: the agent reaches the service only through its Invoke API, never its code.

The five actions mirror `GET /api/v1/token-rates` (catalog 2026-11-01). When the service
adds an action, add it here too; until then `record` refuses it locally, which is better
than a batch the service would answer with `invalid_request`.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded
from types import MappingProxyType

# action -> unit, as `GET /api/v1/token-rates` lists them. Rates are the service's business
# and are deliberately not copied: the service prices every line itself.
ACTIONS: MappingProxyType[str, str] = MappingProxyType(
    {
        "vm_runtime": "minute",
        "screenshot": "screenshot",
        "api_call": "call",
        "ai_message": "message",
        "file_upload": "MB",
    }
)
VM_RUNTIME = "vm_runtime"

# The service's bounds on one usage line: refuse locally what it would refuse remotely.
QUANTITY_DECIMALS = 6
QUANTITY_MAX = Decimal(10**9)
MAX_BATCH_LINES = 1_000
CUSTOMER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
VM_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/+=-]{0,127}$")
# Sums of quantities must be exact whatever the caller's thread-local decimal context says:
# an inexact or rounded sum raises instead of billing a rounded amount.
EXACT = Context(prec=60, traps=[Inexact, Rounded, InvalidOperation, Overflow])


def validate_action(action: object) -> str:
    """The action itself, or ValueError naming the valid ones."""
    if not isinstance(action, str) or action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; valid actions: {', '.join(ACTIONS)}")
    return action


def parse_quantity(value: object) -> Decimal:
    """An exact positive Decimal from an int, float, Decimal or decimal string, else ValueError.

    A float is read back through its shortest repr (0.1 -> Decimal("0.1")), the decimal the
    caller wrote, as the service reads JSON numbers; past 6 places it is refused, not rounded.
    """
    if isinstance(value, bool):
        raise ValueError("quantity must be a number, not a boolean")
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, int | Decimal):
        quantity = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 40:
            raise ValueError(f"quantity {value!r} is not a decimal number")
        try:
            quantity = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"quantity {value!r} is not a decimal number") from None
    else:
        raise ValueError(f"quantity must be a number, not {type(value).__name__}")
    if not quantity.is_finite():
        raise ValueError("quantity must be finite")
    if quantity <= 0:
        raise ValueError("quantity must be greater than zero")
    if quantity > QUANTITY_MAX:
        raise ValueError(f"quantity must be at most {QUANTITY_MAX}")
    exponent = quantity.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > QUANTITY_DECIMALS:
        raise ValueError(f"quantity has more than {QUANTITY_DECIMALS} decimal places")
    return quantity


def validate_vm_id(vm_id: object) -> str | None:
    """None or a vm id the service accepts, else ValueError."""
    if vm_id is None:
        return None
    if not isinstance(vm_id, str) or not VM_ID_PATTERN.match(vm_id):
        raise ValueError("vm_id must be 1-64 characters of letters, digits and _.:-")
    return vm_id


def validate_customer_id(customer_id: object) -> str:
    """A customer id the service accepts, else ValueError."""
    if not isinstance(customer_id, str) or not CUSTOMER_ID_PATTERN.match(customer_id):
        raise ValueError("customer_id must be 1-64 characters of letters, digits, _ and -")
    return customer_id


def format_quantity(quantity: Decimal) -> str:
    """A Decimal as plain decimal text without exponent or trailing zeros: 1E+2 -> '100'."""
    text = format(quantity, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def add_exact(total: Decimal | None, quantity: Decimal) -> Decimal:
    """total + quantity, exactly (None is an empty total)."""
    return quantity if total is None else EXACT.add(total, quantity)


def split_quantity(total: Decimal) -> list[Decimal]:
    """A summed quantity as parts of at most QUANTITY_MAX each (the service's line bound)."""
    whole, rest = EXACT.divmod(total, QUANTITY_MAX)
    parts = [QUANTITY_MAX] * int(whole)
    if rest:
        parts.append(rest)
    return parts
