import pytest

from token_billing.core.errors import InvalidRequest
from token_billing.domain.usage import MAX_USAGE_LINES, cost_by_action, price_usage


def test_prices_every_line_rounding_each_up() -> None:
    lines = price_usage(
        [
            {"action": "vm_runtime", "quantity": 5, "vm_id": "vm-1"},
            {"action": "api_call", "quantity": "0.333"},  # 33.3 mt -> 34
            {"action": "screenshot", "quantity": 0.5},
        ]
    )
    assert [line.cost_mt for line in lines] == [5_000, 34, 250]
    assert cost_by_action(lines) == {"vm_runtime": 5_000, "api_call": 34, "screenshot": 250}
    assert lines[0].to_record() == ["vm_runtime", "5", "vm-1", 5_000]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "usage must be a list"),
        ("vm_runtime", "usage must be a list"),
        ([], "at least one line"),
        ([{"action": "teleport", "quantity": 1}], "unknown action 'teleport'"),
        ([{"quantity": 1}], r"usage\[0\].action is required"),
        ([{"action": "api_call"}], r"usage\[0\].quantity is required"),
        ([{"action": "api_call", "quantity": 0}], "greater than zero"),
        ([{"action": "api_call", "quantity": -3}], "greater than zero"),
        ([{"action": "api_call", "quantity": "ten"}], "not a decimal number"),
        ([{"action": "api_call", "quantity": True}], "not a boolean"),
        ([{"action": "api_call", "quantity": 1, "price": 0}], "unknown fields: price"),
        ([{"action": "api_call", "quantity": 1, "vm_id": "bad id!"}], "vm_id"),
        ([{"action": "api_call", "quantity": 1}, "x"], r"usage\[1\] must be an object"),
    ],
)
def test_bad_lines_are_refused_with_a_clear_message(raw: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        price_usage(raw)


def test_batch_limit_is_enforced() -> None:
    line = {"action": "api_call", "quantity": 1}
    assert len(price_usage([line] * MAX_USAGE_LINES)) == MAX_USAGE_LINES
    with pytest.raises(InvalidRequest, match="at most 1000"):
        price_usage([line] * (MAX_USAGE_LINES + 1))
