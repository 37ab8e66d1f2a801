import pytest

from token_billing.core.errors import InvalidRequest
from token_billing.domain.estimate import cheapest_cover, estimate_usage


@pytest.mark.parametrize(
    ("need_mt", "package_id", "packs"),
    [
        (1, "starter", 1),
        (2_000_000, "starter", 1),
        (2_000_001, "growth", 1),
        (6_500_000, "growth", 1),
        (6_500_001, "pro", 1),
        (16_500_000, "pro", 1),
        (33_000_000, "pro", 2),
        (16_500_001, "growth", 3),  # 3 x growth ($147, 19,500) beats 2 x pro ($198)
    ],
)
def test_cheapest_cover(need_mt: int, package_id: str, packs: int) -> None:
    package, needed = cheapest_cover(need_mt)
    assert (package.package_id, needed) == (package_id, packs)
    assert package.total_mt * needed >= need_mt


def test_daily_profile_is_scaled_to_a_month_and_rounded_once() -> None:
    estimate = estimate_usage(
        [{"action": "vm_runtime", "quantity": 60}, {"action": "api_call", "quantity": "0.001"}],
        "day",
    )
    assert [line.cost_mt for line in estimate.lines] == [1_800_000, 3]  # 0.03 calls -> 3 mt
    assert estimate.tokens_per_month_mt == 1_800_003
    assert estimate.recommended.package_id == "starter"


def test_unknown_period_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="period"):
        estimate_usage([{"action": "vm_runtime", "quantity": 1}], "year")
