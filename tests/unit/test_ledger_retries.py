"""Invariant 7 on the ledger's failure paths: a lost race is retried (bounded), and what a
retry can fix is reported as retryable. DynamoDB Local never cancels a transaction for a
conflict, so a scripted client plays DynamoDB's answers here."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from token_billing.core.errors import ServiceUnavailable
from token_billing.store.ledger import Ledger
from token_billing.store.records import UsageCause
from token_billing.store.transactions import TRANSACTION_ATTEMPTS


def cancelled(*codes: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


class ScriptedClient:
    """Answers each transact_write_items with the next scripted outcome."""

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[Any] = []

    def transact_write_items(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs["TransactItems"])
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return {}


def debit(client: ScriptedClient, sleeps: list[float]) -> Any:
    ledger = Ledger(client, "T", sleep=sleeps.append)  # type: ignore[arg-type]
    return ledger.debit(
        customer_id="c1",
        idempotency_key="k1",
        amount_mt=100,
        canonical_request="r",
        usage=UsageCause(lines=[], mt_by_action={}),
    )


def test_a_lost_race_is_retried_with_the_same_transaction_until_it_commits() -> None:
    client = ScriptedClient(
        cancelled("TransactionConflict", "None"), cancelled("None", "TransactionConflict"), None
    )
    sleeps: list[float] = []
    posted = debit(client, sleeps)
    assert (posted.amount_mt, posted.replayed) == (-100, False)
    assert len(client.calls) == 3
    assert client.calls[0] == client.calls[1] == client.calls[2]  # same keys: safe to retry
    assert len(sleeps) == 2
    assert all(0 <= pause <= 0.1 for pause in sleeps)  # bounded, jittered backoff


def test_a_race_lost_every_time_is_a_retryable_error() -> None:
    client = ScriptedClient(*[cancelled("TransactionConflict", "None")] * TRANSACTION_ATTEMPTS)
    with pytest.raises(ServiceUnavailable) as failure:
        debit(client, [])
    assert failure.value.retryable is True
    assert failure.value.status == 503
    assert len(client.calls) == TRANSACTION_ATTEMPTS


@pytest.mark.parametrize("code", ["ThrottlingException", "ProvisionedThroughputExceededException"])
def test_throttling_is_retried_then_reported_retryable(code: str) -> None:
    throttled = ClientError({"Error": {"Code": code, "Message": "slow down"}}, "TransactWriteItems")
    assert debit(ScriptedClient(throttled, None), []).replayed is False
    with pytest.raises(ServiceUnavailable):
        debit(ScriptedClient(*[throttled] * TRANSACTION_ATTEMPTS), [])


def test_an_unreachable_ledger_is_retryable_and_not_retried_blindly() -> None:
    client = ScriptedClient(EndpointConnectionError(endpoint_url="http://dynamodb"))
    with pytest.raises(ServiceUnavailable, match="same idempotency key"):
        debit(client, [])
    assert len(client.calls) == 1  # the caller retries with its key; the entry key dedupes


def test_a_validation_error_is_a_bug_not_a_retry() -> None:
    broken = ClientError(
        {"Error": {"Code": "ValidationException", "Message": "bad"}}, "TransactWriteItems"
    )
    with pytest.raises(ClientError):
        debit(ScriptedClient(broken), [])
