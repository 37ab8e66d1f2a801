from fractions import Fraction

import pytest

from token_billing.core.units import (
    QuantityError,
    cost_mt,
    format_quantity,
    format_tokens,
    parse_quantity,
    tokens_to_mt,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, Fraction(1)),
        (0.1, Fraction(1, 10)),  # the float 0.1 is read back as the decimal the caller wrote
        (2.5, Fraction(5, 2)),
        ("0.000001", Fraction(1, 1_000_000)),
        (" 12.75 ", Fraction(51, 4)),
        ("1E+3", Fraction(1000)),
        (10**9, Fraction(10**9)),
    ],
)
def test_parse_quantity_is_exact(raw: object, expected: Fraction) -> None:
    assert parse_quantity(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        0,
        -1,
        "-0.5",
        0.0,
        True,
        False,
        None,
        "abc",
        "",
        "NaN",
        "Infinity",
        float("inf"),
        float("nan"),
        "0.0000001",
        10**9 + 1,
        [1],
        {"q": 1},
        "1" * 41,
    ],
)
def test_parse_quantity_refuses(raw: object) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(raw)


@pytest.mark.parametrize(
    ("rate_mt", "quantity", "expected_mt"),
    [
        (1000, Fraction(1), 1000),
        (100, Fraction(1, 3), 34),  # 33.33... rounds UP to the next milli-token
        (500, Fraction(1, 1_000_000), 1),  # the smallest charge is one milli-token
        (200, Fraction(5), 1000),
        (1000, Fraction(25, 10), 2500),
    ],
)
def test_cost_rounds_up_to_the_milli_token(
    rate_mt: int, quantity: Fraction, expected_mt: int
) -> None:
    assert cost_mt(rate_mt, quantity) == expected_mt


@pytest.mark.parametrize(
    ("amount_mt", "text"),
    [
        (1_999_900, "1999.9"),
        (2_000_000, "2000"),
        (1, "0.001"),
        (0, "0"),
        (-1_500, "-1.5"),
        (10, "0.01"),
        (123_456_789, "123456.789"),
    ],
)
def test_format_tokens_is_exact(amount_mt: int, text: str) -> None:
    assert format_tokens(amount_mt) == text
    assert tokens_to_mt(text) == amount_mt


def test_format_quantity_round_trips() -> None:
    for text in ["1", "0.5", "0.000001", "123.25", "1000000000"]:
        assert format_quantity(parse_quantity(text)) == text


@pytest.mark.parametrize("raw", ["0.0001", "abc", 1.5, True, None, "Infinity"])
def test_tokens_to_mt_refuses(raw: object) -> None:
    with pytest.raises(QuantityError):
        tokens_to_mt(raw)
