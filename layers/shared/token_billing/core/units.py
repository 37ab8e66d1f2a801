"""Exact token arithmetic: integer milli-tokens (mt) inside, decimal strings at the edge.

No float ever holds a token amount. A quantity arrives as an int, a decimal string or,
because the Lambda runtime parses invoke payloads with `json.loads`, a float; a float is
read back through its shortest repr, which is the decimal text the caller wrote for any
value of up to 15 significant digits, and anything finer than QUANTITY_DECIMALS is refused.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction

MT_PER_TOKEN = 1_000
# Bounds on what a single usage line can say: enough for any real meter, small enough that
# a typo (1e12 minutes) is refused instead of wiping out a balance.
QUANTITY_DECIMALS = 6
QUANTITY_MAX = 10**9


class QuantityError(ValueError):
    """A quantity that is not a finite positive decimal within bounds."""


def parse_quantity(value: object) -> Fraction:
    """Return `value` as an exact positive Fraction, or raise QuantityError."""
    if isinstance(value, bool):  # bool is an int subclass: `true` is not a quantity
        raise QuantityError("quantity must be a number, not a boolean")
    if isinstance(value, int):
        decimal_value = Decimal(value)
    elif isinstance(value, float):
        decimal_value = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 40:
            raise QuantityError("quantity must be a decimal number")
        try:
            decimal_value = Decimal(text)
        except InvalidOperation:
            raise QuantityError(f"quantity {value!r} is not a decimal number") from None
    else:
        raise QuantityError("quantity must be a number")
    if not decimal_value.is_finite():
        raise QuantityError("quantity must be finite")
    if decimal_value <= 0:
        raise QuantityError("quantity must be greater than zero")
    if decimal_value > QUANTITY_MAX:
        raise QuantityError(f"quantity must be at most {QUANTITY_MAX}")
    exponent = decimal_value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite decimals have an int exponent
    if -exponent > QUANTITY_DECIMALS:
        raise QuantityError(f"quantity has more than {QUANTITY_DECIMALS} decimal places")
    return Fraction(decimal_value)


def cost_mt(rate_mt_per_unit: int, quantity: Fraction) -> int:
    """Rate x quantity in milli-tokens, rounded up to the next milli-token."""
    assert rate_mt_per_unit > 0
    product = rate_mt_per_unit * quantity
    return -((-product.numerator) // product.denominator)  # ceiling division on integers


def format_tokens(amount_mt: int) -> str:
    """Milli-tokens as the shortest exact decimal string: 1999900 -> '1999.9'."""
    sign = "-" if amount_mt < 0 else ""
    whole, frac = divmod(abs(amount_mt), MT_PER_TOKEN)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:03d}".rstrip("0")


def format_quantity(quantity: Fraction) -> str:
    """A quantity from parse_quantity as its shortest exact decimal string."""
    scaled = quantity * 10**QUANTITY_DECIMALS
    assert scaled.denominator == 1, "quantities carry at most QUANTITY_DECIMALS places"
    whole, frac = divmod(scaled.numerator, 10**QUANTITY_DECIMALS)
    if frac == 0:
        return str(whole)
    return f"{whole}.{frac:0{QUANTITY_DECIMALS}d}".rstrip("0")


def tokens_to_mt(value: object) -> int:
    """A whole or decimal token amount (int or decimal string, <= 3 places) as milli-tokens."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise QuantityError("token amount must be an integer or a decimal string")
    try:
        decimal_value = Decimal(value)
    except InvalidOperation:
        raise QuantityError(f"token amount {value!r} is not a decimal number") from None
    if not decimal_value.is_finite():
        raise QuantityError("token amount must be finite")
    scaled = decimal_value * MT_PER_TOKEN
    if scaled != scaled.to_integral_value():
        raise QuantityError("token amount has more than 3 decimal places")
    return int(scaled)
