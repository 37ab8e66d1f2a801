"""Reconciliation: check every customer's account against their ledger, holds and orders.
Read-only: it reports every difference and changes nothing.

Checks, per customer:
- balance_mt = sum of ledger entries (invariant 1);
- held_mt = sum of active holds, available_mt = balance_mt - held_mt (invariant 2);
- every paid order has exactly one purchase entry of its tokens + bonus, and every purchase
  entry belongs to an order that was paid.

One parallel Scan of the table (`store.table_scan`: a batch job, eventually consistent; run
it when the table is quiet or accept in-flight noise, which a second run clears).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from token_billing.store.order_records import PAID_STATUSES
from token_billing.store.table_scan import CustomerTally, tally_customers

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True, slots=True)
class Finding:
    customer_id: str
    check: str
    expected: str
    actual: str
    detail: str = ""

    def line(self) -> str:
        suffix = f" ({self.detail})" if self.detail else ""
        found = f"expected {self.expected}, found {self.actual}"
        return f"{self.customer_id}: {self.check}: {found}{suffix}"


@dataclass(frozen=True, slots=True)
class Report:
    customers: int
    items: int
    findings: list[Finding]

    @property
    def clean(self) -> bool:
        return not self.findings


def reconcile(client: DynamoDBClient, table: str) -> Report:
    customers, count = tally_customers(client, table)
    findings = [
        finding
        for customer_id, customer in sorted(customers.items())
        for finding in _check(customer_id, customer)
    ]
    return Report(customers=len(customers), items=count, findings=findings)


def _check(customer_id: str, c: CustomerTally) -> Iterator[Finding]:
    if c.account is None:
        if c.entries_sum_mt or c.active_holds_mt:
            yield Finding(
                customer_id,
                "account exists",
                "an ACCOUNT item",
                "none",
                "entries or holds without one",
            )
    else:
        balance, held, available = c.account.balance_mt, c.account.held_mt, c.account.available_mt
        if balance != c.entries_sum_mt:
            yield Finding(
                customer_id, "balance = sum of entries", str(c.entries_sum_mt), str(balance)
            )
        if held != c.active_holds_mt:
            yield Finding(
                customer_id, "held = sum of active holds", str(c.active_holds_mt), str(held)
            )
        if available != balance - held:
            yield Finding(
                customer_id, "available = balance - held", str(balance - held), str(available)
            )
    paid_orders = {
        order_id: order.total_mt
        for order_id, order in c.orders.items()
        if order.status in PAID_STATUSES or order.ever_paid  # paid_at stays once paid
    }
    for order_id, total_mt in sorted(paid_orders.items()):
        credits = c.purchases.get(order_id, [])
        if credits != [total_mt]:
            yield Finding(
                customer_id,
                "paid order credited once",
                f"one credit of {total_mt} mt",
                f"{len(credits)} credit(s) {credits}",
                f"order {order_id}",
            )
    for order_id, credits in sorted(c.purchases.items()):
        if order_id not in paid_orders:
            yield Finding(
                customer_id,
                "credit has a paid order",
                f"a paid order {order_id}",
                "none",
                f"{len(credits)} purchase credit(s) totalling {sum(credits)} mt",
            )
