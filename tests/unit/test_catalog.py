import pytest

from token_billing.domain import catalog


def test_packages_match_the_seed_figures() -> None:
    seen = {
        package_id: (p.price_cents, p.tokens_mt, p.bonus_mt, p.estimated_hours)
        for package_id, p in catalog.PACKAGES.items()
    }
    assert seen == {
        "starter": (1_900, 2_000_000, 0, 20),
        "growth": (4_900, 6_000_000, 500_000, 65),
        "pro": (9_900, 15_000_000, 1_500_000, 165),
    }


def test_rates_match_the_seed_figures() -> None:
    assert {action: rate.rate_mt_per_unit for action, rate in catalog.RATES.items()} == {
        "vm_runtime": 1_000,
        "screenshot": 500,
        "api_call": 100,
        "ai_message": 200,
        "file_upload": 1_000,
    }


def test_low_balance_line_is_500_tokens() -> None:
    assert catalog.LOW_BALANCE_MT == 500_000


@pytest.mark.parametrize("package_id", ["", "enterprise", "STARTER", "starter "])
def test_unknown_package_is_refused_with_the_valid_ids(package_id: str) -> None:
    with pytest.raises(catalog.UnknownCatalogItem, match="starter, growth, pro"):
        catalog.get_package(package_id)


@pytest.mark.parametrize("action", ["", "teleport", "VM_RUNTIME"])
def test_unknown_action_is_refused_with_the_valid_actions(action: str) -> None:
    with pytest.raises(catalog.UnknownCatalogItem, match="vm_runtime"):
        catalog.get_rate(action)


def test_estimated_hours_is_whole_hours_and_never_negative() -> None:
    assert catalog.estimated_hours(199_999) == 2  # 1.99999 hours, rounded for display
    assert catalog.estimated_hours(149_999) == 1
    assert catalog.estimated_hours(0) == 0
    assert catalog.estimated_hours(-5_000) == 0


def test_catalog_is_read_only() -> None:
    with pytest.raises(TypeError):
        catalog.PACKAGES["free"] = catalog.PACKAGES["starter"]  # type: ignore[index]


def test_estimated_hours_exact_is_the_undivided_decimal() -> None:
    """Issue 16: 499.9 tokens read as 4 hours and 99 tokens as 0; the exact figure now
    travels beside the whole-hour display, and the packs keep ~20 / ~65 / ~165."""
    assert catalog.estimated_hours_exact(499_900) == "4.999"
    assert catalog.estimated_hours(499_900) == 5
    assert catalog.estimated_hours_exact(99_000) == "0.99"
    assert catalog.estimated_hours(99_000) == 1
    assert catalog.estimated_hours_exact(1) == "0.00001"
    assert catalog.estimated_hours_exact(0) == catalog.estimated_hours_exact(-1) == "0"
    packs = catalog.PACKAGES.values()
    assert [(p.estimated_hours, p.estimated_hours_exact) for p in packs] == [
        (20, "20"),
        (65, "65"),
        (165, "165"),
    ]
