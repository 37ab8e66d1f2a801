"""Histories the simulation found a defect with, kept as scripted step lists: each one fails
on the defect and passes on the fix."""

from __future__ import annotations

from typing import Any

import pytest

from tests.simulation.generator import Fault, Step
from tests.simulation.runner import report, run_history
from tests.simulation.system import System

pytestmark = pytest.mark.integration
C = "cust-a"
# Auto top-up on: a starter pack below 1,500 tokens, room for every charge the tests make.
SETTINGS: dict[str, Any] = {
    "enabled": True,
    "package_id": "starter",
    "threshold": "1500",
    "max_charges_per_day": 10,
    "max_cents_per_month": 50_000,
    "consent_text_version": "current",
}


def stream(seed: int) -> Step:
    return Step("stream", {"consumer": "both", "seed": seed, "stripe_faults": []})


def send_all() -> list[Step]:
    return [Step("stripe_send", {"pick": 0, "redeliver": False})] * 4


def crossing(key: str, tokens: int) -> list[Step]:
    """A debit taking available below the threshold, then the stream admits and the charger
    pays (two deliveries: the attempt is written by the first)."""
    debit = Step("debit", {"c": C, "key": key, "lines": [["vm_runtime", str(tokens), "vm-1"]]})
    return [debit, stream(1), stream(2), *send_all()]


def test_a_redelivered_payment_does_not_reset_a_later_breaker(system: System) -> None:
    """A `payment_intent.succeeded` delivered again after the breaker tripped (3 declines of
    a later card) must not clear the pause: it is no new payment (README, Auto top-up)."""
    steps = [
        Step("save_card", {"c": C, "handle": "o1", "card": "pm_card_visa"}),  # 2,000 tokens
        Step("settings", {"c": C, "body": SETTINGS}),
        *crossing("d1", 600),  # 1,400: 2 packs bought and credited, 5,400
        Step("save_card", {"c": C, "handle": "o2", "card": "pm_card_chargeDeclined"}),  # 7,400
        *crossing("d2", 6_000),  # declined once
        Step("grant", {"c": C, "key": "g1", "amount_mt": 600_000}),
        *crossing("d3", 600),  # twice
        Step("grant", {"c": C, "key": "g2", "amount_mt": 600_000}),
        *crossing("d4", 600),  # three times: paused
        Step(
            "stripe_send",
            {"pick": 0, "redeliver": True, "type": "payment_intent.succeeded"},
        ),
        Step("grant", {"c": C, "key": "g3", "amount_mt": 600_000}),
        *crossing("d5", 600),  # paused: no fourth charge
    ]
    result = run_history(system, 1, steps)
    assert result.violation is None, report(result)
    assert result.coverage["attempt declined"] == 3, result.coverage
    assert result.coverage["attempt paused"] == 1, result.coverage


def test_an_attempt_first_charged_past_stripes_key_window_expires_uncharged(
    system: System,
) -> None:
    """The model once charged an attempt whose stream record reached the charger 24 h after
    its admission (seed 70003): the charger looks such an attempt up by its id instead of
    sending it again blind, finds no payment, and expires it and its order, counting no
    failure (README, Auto top-up). No PaymentIntent is made."""
    debit = Step("debit", {"c": C, "key": "d1", "lines": [["vm_runtime", "600", "vm-1"]]})
    ledger_only = Step("stream", {"consumer": "ledger", "seed": 1, "stripe_faults": []})
    charger = Step("stream", {"consumer": "charger", "seed": 2, "stripe_faults": []})
    steps = [
        Step("save_card", {"c": C, "handle": "o1", "card": "pm_card_visa"}),  # 2,000 tokens
        Step("settings", {"c": C, "body": SETTINGS}),
        debit,  # 1,400: crosses the threshold
        ledger_only,  # admitted: the attempt is written
        ledger_only,  # its record reaches the stream
        Step("advance", {"seconds": 24 * 3600}),
        charger,
        *send_all(),
    ]
    result = run_history(system, 1, steps)
    assert result.violation is None, report(result)
    assert result.coverage["attempt expired"] == 1, result.coverage
    assert result.coverage["attempt succeeded"] == 0, result.coverage


def test_a_recovery_paid_through_a_crash_after_its_credit_ends_the_pause(system: System) -> None:
    """The recovery Checkout's credit committed, then the webhook died before its reply
    (seed 70035): Stripe's redelivery found the order credited and cleared nothing, so the
    customer stayed paused with a paid recovery. The credit's own transaction ends the
    pause now."""
    steps = [
        Step("save_card", {"c": C, "handle": "o1", "card": "pm_card_authenticationRequired"}),
        Step("settings", {"c": C, "body": SETTINGS}),
        *crossing("d1", 600),  # authentication required: paused, with a recovery link
        Step("recover", {"c": C}, Fault("TransactWriteItems", "crash")),
        Step("grant", {"c": C, "key": "g1", "amount_mt": 600_000}),
        *crossing("d2", 2_000),  # no longer paused: charged again
    ]
    result = run_history(system, 1, steps)
    assert result.violation is None, report(result)
    assert result.coverage["attempt recovered"] == 1, result.coverage
