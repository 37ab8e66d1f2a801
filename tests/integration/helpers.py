"""Small helpers integration tests share."""

from __future__ import annotations

from typing import Any

from token_billing.ledger import Account, Ledger


def fund(ledger: Ledger, customer_id: str, amount_mt: int, key: str = "fund") -> None:
    ledger.grant(
        customer_id=customer_id,
        idempotency_key=key,
        amount_mt=amount_mt,
        reason="test funding",
        granted_by="tests",
    )


def assert_consistent(ledger: Ledger, customer_id: str) -> Account:
    """Invariants 1 and 2: balance = sum of entries; held = sum of active holds;
    available = balance - held."""
    from token_billing.history import History

    account = ledger.get_account(customer_id)
    assert account is not None
    assert account.balance_mt == ledger.sum_entries_mt(customer_id)
    _, holds = History(ledger._client, ledger._table).account_with_holds(customer_id)
    assert account.held_mt == sum(hold.amount_mt for hold in holds)
    assert account.available_mt == account.balance_mt - account.held_mt
    return account


def http_json(
    base_url: str,
    method: str,
    path: str,
    body: object | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of one real HTTP request to the dev server (loopback only)."""
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            parsed: dict[str, Any] = json.loads(response.read())
            return response.status, parsed
    except urllib.error.HTTPError as error:
        with error:
            parsed = json.loads(error.read())
            return error.code, parsed
