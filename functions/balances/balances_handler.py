"""balances: what a customer sees of their tokens (balance, history, orders, dashboard),
and the admin export. Read-only: grants live in the grants function. A customer reads only
their own; the admin scope reads anyone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.errors import InvalidRequest
from token_billing.core.observability import logger, publish_metrics
from token_billing.core.units import format_tokens
from token_billing.domain.account_view import (
    account_or_empty,
    balance_view,
    quick_purchase_suggestions,
)
from token_billing.domain.catalog import CURRENCY
from token_billing.domain.vm_usage import MAX_DAYS, MAX_TOP_VMS, usage_by_vm
from token_billing.edge.access import require_admin
from token_billing.edge.csv_export import ledger_csv
from token_billing.edge.identity import caller_for_customer, current_caller
from token_billing.edge.models.balances import (
    BalanceOut,
    DashboardOut,
    OrderListOut,
    OrderOut,
    TransactionListOut,
    TransactionOut,
    UsageOut,
)
from token_billing.edge.models.catalog import PackageOut
from token_billing.edge.models.customer_path import CustomerId
from token_billing.edge.models.vm_limits import UsageByVmOut
from token_billing.edge.resolver import create_resolver
from token_billing.runtime import (
    default_history,
    default_order_store,
    default_usage_aggregates,
    default_vm_limit_store,
    default_vm_usage,
)
from token_billing.store.history import (
    ENTRY_KINDS,
    MAX_EXPORT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    decode_cursor,
    encode_cursor,
)

app = create_resolver()
default_history()  # create the DynamoDB client during init
# The dashboard's four reads are independent: run them side by side, not one after another.
READERS = ThreadPoolExecutor(max_workers=4)
RECENT_TRANSACTIONS = 10
RECENT_ORDERS = 5
USAGE_DAYS = 30


def balance_of(customer_id: str) -> BalanceOut:
    account, holds = default_history().account_with_holds(customer_id)
    return BalanceOut.of(balance_view(account_or_empty(account, customer_id)), holds)


@app.get("/api/v1/customers/<customer_id>/tokens", tags=["balances"], summary="Token balance")
def get_balance(customer_id: CustomerId) -> BalanceOut:
    caller_for_customer(app, customer_id)
    return balance_of(customer_id)


@app.get(
    "/api/v1/customers/<customer_id>/tokens/transactions",
    tags=["balances"],
    summary="Token transactions, newest first",
)
def list_transactions(
    customer_id: CustomerId,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    kind: Annotated[str | None, Query(description="Comma-separated kinds", max_length=100)] = None,
    since: Annotated[str | None, Query(description="ISO 8601, inclusive", max_length=40)] = None,
    until: Annotated[str | None, Query(description="ISO 8601, inclusive", max_length=40)] = None,
) -> TransactionListOut:
    caller_for_customer(app, customer_id)
    kinds = tuple(part.strip() for part in (kind or "").split(",") if part.strip())
    unknown = set(kinds) - set(ENTRY_KINDS)
    if unknown:
        raise InvalidRequest(
            f"unknown kind {sorted(unknown)[0]!r}; kinds: {', '.join(ENTRY_KINDS)}"
        )
    page = default_history().transactions(
        customer_id,
        limit=limit,
        cursor=cursor,
        kinds=kinds,
        since=normalized_time(since, "since"),
        until=normalized_time(until, "until"),
    )
    return TransactionListOut(
        data=[TransactionOut.of(txn) for txn in page.data],
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )


def normalized_time(value: str | None, field: str) -> str | None:
    """An ISO 8601 instant in the ledger's own format (UTC, microseconds, Z)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{field} must be an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@app.get(
    "/api/v1/customers/<customer_id>/tokens/orders",
    tags=["balances"],
    summary="Token pack orders, newest first",
)
def list_orders(
    customer_id: CustomerId,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> OrderListOut:
    caller_for_customer(app, customer_id)
    start = decode_cursor(cursor, customer_id, ("PK", "SK")) if cursor else None
    orders, last_key = default_order_store().list_for_customer(
        customer_id, limit=limit, cursor=start
    )
    return OrderListOut(
        data=[OrderOut.of(order) for order in orders],
        has_more=last_key is not None,
        next_cursor=encode_cursor(last_key) if last_key else None,
    )


@app.get("/api/v1/customers/<customer_id>/dashboard", tags=["balances"], summary="Token dashboard")
def get_dashboard(customer_id: CustomerId) -> DashboardOut:
    caller_for_customer(app, customer_id)
    history = default_history()
    today = datetime.now(UTC).date()
    first_day = today - timedelta(days=USAGE_DAYS - 1)
    balance = READERS.submit(balance_of, customer_id)
    transactions = READERS.submit(history.transactions, customer_id, limit=RECENT_TRANSACTIONS)
    orders = READERS.submit(
        default_order_store().list_for_customer, customer_id, limit=RECENT_ORDERS
    )
    usage = READERS.submit(default_usage_aggregates().usage_for_days, customer_id, first_day, today)
    balance_out = balance.result()
    return DashboardOut(
        balance=balance_out,
        recent_transactions=[TransactionOut.of(txn) for txn in transactions.result().data],
        recent_orders=[OrderOut.of(order) for order in orders.result()[0]],
        usage_last_30_days=[
            UsageOut(action=action, tokens=format_tokens(used_mt), tokens_mt=used_mt)
            for action, used_mt in sorted(usage.result().items())
        ],
        usage_period_start=first_day.isoformat(),
        usage_period_end=today.isoformat(),
        quick_purchase=[
            PackageOut.of(package, CURRENCY)
            for package in quick_purchase_suggestions(balance_out.available_mt)
        ],
    )


@app.get(
    "/api/v1/customers/<customer_id>/tokens/usage",
    tags=["balances"],
    summary="Tokens per VM per day and the top VMs of the period, with their daily limits",
)
def get_usage(
    customer_id: CustomerId,
    group_by: Annotated[Literal["vm"], Query(description="Only `vm` for now")] = "vm",
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = USAGE_DAYS,
    top: Annotated[int, Query(ge=1, le=MAX_TOP_VMS)] = 10,
) -> UsageByVmOut:
    caller_for_customer(app, customer_id)
    today = datetime.now(UTC).date()
    first_day = today - timedelta(days=days - 1)
    # Three reads side by side: the VM-month aggregates, the limits, today's counters.
    usage = READERS.submit(default_vm_usage().usage, customer_id, first_day, today)
    limits = READERS.submit(default_vm_limit_store().get, customer_id)
    counters = READERS.submit(
        default_vm_limit_store().counters_of_day, customer_id, today.isoformat()
    )
    report = usage_by_vm(
        usage.result(),
        first_day=first_day,
        last_day=today,
        top=top,
        limits=limits.result(),
        today=counters.result(),
    )
    return UsageByVmOut.of(customer_id, report)


@app.get(
    "/api/v1/customers/<customer_id>/tokens/export",
    tags=["admin"],
    summary="The customer's ledger as CSV, oldest first (admin scope)",
    responses={200: {"description": "text/csv; continue with the X-Next-Cursor header"}},
)
def export_ledger(
    customer_id: CustomerId,
    limit: Annotated[int, Query(ge=1, le=MAX_EXPORT_PAGE_SIZE)] = MAX_EXPORT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response[str]:
    require_admin(current_caller(app))
    page = default_history().transactions(
        customer_id, limit=limit, cursor=cursor, oldest_first=True
    )
    headers = {
        "Content-Disposition": f'attachment; filename="ledger-{customer_id}.csv"',
        **({"X-Next-Cursor": page.next_cursor} if page.next_cursor else {}),
    }
    return Response(
        status_code=200,
        content_type="text/csv; charset=utf-8",
        body=ledger_csv(page.data),
        headers=headers,
    )


@publish_metrics
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
