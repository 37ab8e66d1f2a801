"""The charge of an admitted attempt, in the charger function (the only auto top-up step
that loads stripe): ONE off-session payment for all the packs, keyed by the attempt id,
retried under that key on provider errors, ended in a recorded outcome on every path.

With StripeInvoices=true (`billing.invoices`) the payment is an invoice's: a draft invoice
for the customer (`auto_advance: false`, `pending_invoice_items_behavior: exclude`, the
order's metadata, automatic tax with StripeTax=true), one line of `packs` x the catalog
price, finalized, then paid off-session with the saved card; each request keyed
`<attempt id>:<step>`, so a retry never makes a second invoice or charge. Its webhooks
credit it (`invoice.paid`). Otherwise ONE off-session PaymentIntent, as before."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from token_billing.core.observability import MetricUnit, logger, metrics
from token_billing.domain.auto_top_up.attempt_end import (
    AttemptEnd,
    Publish,
    StripeAnswer,
    end_attempt,
)
from token_billing.domain.auto_top_up.payment_requests import charge_metadata, invoice_params
from token_billing.domain.auto_top_up.vocabulary import RECOVERY_KIND, ChargeResult
from token_billing.domain.billing_settings import BillingSettings, checkout_document_params
from token_billing.domain.catalog import get_package
from token_billing.domain.purchases import with_query
from token_billing.integrations.checkout_session import CheckoutSession
from token_billing.integrations.off_session_payment import OffSessionResult
from token_billing.store.order_documents import OrderDocuments
from token_billing.store.order_records import Order
from token_billing.store.orders import OrderStore
from token_billing.store.top_up_records import ADMITTED, Attempt, TopUpState
from token_billing.store.top_up_store import TopUpStore

# Provider errors (5xx, 429, timeouts) are retried under the same idempotency key; bounded
# so one attempt never outlives the charger's Lambda timeout: 4 requests, 1 + 2 + 4 s apart.
STRIPE_REQUESTS_PER_ATTEMPT = 4
STRIPE_BACKOFF_BASE_S = 1.0
RECOVERY_EXPIRES_S = 23 * 3600  # Stripe allows Checkout sessions up to 24 h
# Stripe forgets an idempotency key after 24 h: an attempt this old (a DLQ replay, a stream
# retried for a day) is looked up by its attempt id, never sent again blind. An hour of
# margin for clocks and the search index's lag.
STALE_AFTER_S = 23 * 3600


class PaymentGateway(Protocol):
    """Stripe, as the charger uses it (`integrations.stripe_gateway`, or a test's fake)."""

    def confirm_off_session(
        self, params: dict[str, Any], *, idempotency_key: str
    ) -> OffSessionResult: ...

    def create_checkout(
        self, params: dict[str, Any], *, idempotency_key: str
    ) -> CheckoutSession: ...

    def expire_checkout(self, session_id: str) -> None: ...

    def find_payment_intent(self, metadata_key: str, value: str) -> OffSessionResult | None: ...


@runtime_checkable
class InvoiceGateway(PaymentGateway, Protocol):
    """Stripe's invoices, as the charger pays an auto top-up by invoice."""

    def open_invoice(
        self, invoice: dict[str, Any], items: list[dict[str, Any]], *, idempotency_key: str
    ) -> OffSessionResult: ...

    def pay_invoice(
        self, invoice_id: str, params: dict[str, Any], *, idempotency_key: str
    ) -> OffSessionResult: ...

    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> None: ...

    def find_invoice(self, metadata_key: str, value: str) -> OffSessionResult | None: ...


# Credits a succeeded PaymentIntent found by a lookup, through the webhook's exactly-once
# order path (the charger's handler passes `webhooks.payment_intent_succeeded`).
CreditFound = Callable[[Mapping[str, Any]], object]


@dataclass(frozen=True, slots=True)
class RecoveryUrls:
    success_url: str
    cancel_url: str


@dataclass(frozen=True, slots=True)
class ChargeContext:
    """What charging an attempt works with: the stores, Stripe, the event bus, the clock."""

    store: TopUpStore
    orders: OrderStore
    gateway: PaymentGateway
    publish: Publish
    recovery_urls: RecoveryUrls | None
    sleep: Callable[[float], None]
    credit_found: CreditFound | None = None
    clock: Callable[[], float] = time.time
    # What the operator turned on (StripeInvoices, StripeTax, CollectTaxIds); None: a bare
    # PaymentIntent and a recovery Checkout without documents.
    billing: BillingSettings | None = None

    @property
    def invoices(self) -> InvoiceGateway | None:
        """The gateway's invoice calls when the attempt is paid by invoice."""
        if self.billing is None or not self.billing.invoices:
            return None
        assert isinstance(self.gateway, InvoiceGateway), "StripeInvoices needs invoice calls"
        return self.gateway

    def end(self, attempt: Attempt, end: AttemptEnd) -> ChargeResult:
        """Record how the attempt ended, then tell it (`attempt_end.end_attempt`)."""
        return end_attempt(attempt, end, store=self.store, publish=self.publish, sleep=self.sleep)


def payment_intent_params(order: Order, state: TopUpState, attempt: Attempt) -> dict[str, Any]:
    """ONE off-session PaymentIntent for every pack: amount from the catalog x packs."""
    assert state.card is not None and state.stripe_customer_id
    package = get_package(order.package_id)
    assert order.price_cents == package.price_cents * order.packs
    return {
        "amount": order.price_cents,
        "currency": order.currency,
        "customer": state.stripe_customer_id,
        "payment_method": state.card.payment_method_id,
        "off_session": True,
        "confirm": True,
        "description": f"Auto top-up: {order.packs} x {package.name} token pack",
        "metadata": charge_metadata(order, attempt),
    }


def recovery_checkout_params(
    order: Order,
    state: TopUpState,
    urls: RecoveryUrls,
    *,
    now_s: int,
    billing: BillingSettings | None = None,
) -> dict[str, Any]:
    """An on-session Checkout for the same packs, saving the card again for later charges,
    with the invoice, billing address and tax a purchase's Checkout has (`billing`)."""
    package = get_package(order.package_id)
    metadata = {
        "customer_id": order.customer_id,
        "package_id": order.package_id,
        "order_id": order.order_id,
        "catalog_version": order.catalog_version,
        "kind": RECOVERY_KIND,
        "packs": str(order.packs),
    }
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": order.packs,
                "price_data": {
                    "currency": order.currency,
                    "unit_amount": package.price_cents,
                    "product_data": {"name": f"{package.name} token pack (auto top-up)"},
                },
            }
        ],
        "client_reference_id": order.customer_id,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata, "setup_future_usage": "off_session"},
        "success_url": with_query(
            urls.success_url, order_id=order.order_id, session_id="{CHECKOUT_SESSION_ID}"
        ),
        "cancel_url": with_query(urls.cancel_url, order_id=order.order_id),
        "expires_at": now_s + RECOVERY_EXPIRES_S,
    }
    if state.stripe_customer_id:
        params["customer"] = state.stripe_customer_id
    if billing is not None:
        documents = checkout_document_params(
            billing,
            metadata=metadata,
            total_mt=order.total_mt,
            has_customer=bool(state.stripe_customer_id),
        )
        params.update(documents)
        if billing.stripe_tax:
            params["line_items"][0]["price_data"]["tax_behavior"] = "exclusive"
    return params


def _with_retries(
    send: Callable[[], OffSessionResult], key: str, sleep: Callable[[float], None]
) -> tuple[OffSessionResult, int]:
    """Send one keyed request, again under the same key while Stripe's answer is unknown
    (5xx, 429, timeout): the result and how many requests it took."""
    result = OffSessionResult("retryable", message="not sent")
    for request_number in range(STRIPE_REQUESTS_PER_ATTEMPT):
        if request_number:
            metrics.add_metric(name="AutoTopUpProviderRetries", unit=MetricUnit.Count, value=1)
            sleep(STRIPE_BACKOFF_BASE_S * 2 ** (request_number - 1))
        result = send()
        if result.status != "retryable":
            return result, request_number + 1
        logger.warning(
            "Stripe did not answer the auto top-up; retrying under the same key",
            extra={"attempt_id": key, "reason": result.message},
        )
    return result, STRIPE_REQUESTS_PER_ATTEMPT


def charge_attempt(
    customer_id: str,
    version: int,
    *,
    store: TopUpStore,
    orders: OrderStore,
    gateway: PaymentGateway,
    publish: Publish,
    recovery_urls: RecoveryUrls | None,
    sleep: Callable[[float], None] = time.sleep,
    credit_found: CreditFound | None = None,
    clock: Callable[[], float] = time.time,
    billing: BillingSettings | None = None,
) -> ChargeResult:
    """Charge one admitted attempt and record its outcome; a redelivery of an ended attempt
    does nothing. Every path, exceptions included, ends in a recorded outcome. `billing`
    (the template's switches) chooses an invoice or a bare PaymentIntent."""
    context = ChargeContext(
        store, orders, gateway, publish, recovery_urls, sleep, credit_found, clock, billing
    )
    attempt = store.get_attempt(customer_id, version)
    if attempt is None or attempt.status != ADMITTED:
        return "already_ended"
    requests = 0
    try:
        state = store.get_state(customer_id)
        assert attempt.order_id
        order = orders.get(customer_id, attempt.order_id)
        if state.card is None or not state.stripe_customer_id:
            no_card = StripeAnswer(message="no saved card")
            return context.end(attempt, AttemptEnd("error", counts_as_failure=True, answer=no_card))
        if context.clock() - _epoch_s(attempt.created_at) >= STALE_AFTER_S:
            return context.end(attempt, _look_up_stale(context, order, state, attempt))
        if context.invoices is not None:
            return context.end(attempt, _charge_invoice(context, order, state, attempt))
        params = payment_intent_params(order, state, attempt)
        result, requests = _with_retries(
            lambda: gateway.confirm_off_session(params, idempotency_key=attempt.attempt_id),
            attempt.attempt_id,
            sleep,
        )
        return context.end(attempt, _settle(context, order, state, result, requests))
    except Exception as error:
        # Ours, not the card's (a DynamoDB throttle, a bug): Stripe's verdicts arrive as
        # results, never as exceptions. The attempt ends (the in-flight slot is freed, the
        # order stays pending for a payment Stripe did make) but the breaker is not moved:
        # three of our errors must not pause a customer whose card is fine.
        logger.exception("auto top-up attempt failed", extra={"attempt_id": attempt.attempt_id})
        failed = StripeAnswer(message=f"{type(error).__name__}: {error}", requests=requests)
        return context.end(attempt, AttemptEnd("error", counts_as_failure=False, answer=failed))


def _charge_invoice(
    context: ChargeContext, order: Order, state: TopUpState, attempt: Attempt
) -> AttemptEnd:
    """Open the attempt's invoice, link it to the order (so its payment's webhook finds the
    order), pay it off-session; a payment that failed voids it, so no unpaid invoice stays
    open for a charge that did not happen. Guard rails as for a PaymentIntent (`_settle`)."""
    gateway, key = context.invoices, attempt.attempt_id
    assert gateway is not None and context.billing is not None and state.card is not None
    invoice, items = invoice_params(order, state, attempt, context.billing)
    opened, requests = _with_retries(
        lambda: gateway.open_invoice(invoice, items, idempotency_key=key), key, context.sleep
    )
    invoice_id = opened.invoice_id
    if opened.status != "processing" or invoice_id is None:
        return _settle(context, order, state, opened, requests)
    documents = OrderDocuments(context.orders.client, context.orders.table_name)
    if not documents.link_invoice(order.customer_id, order.order_id, invoice_id):
        raise RuntimeError(f"invoice {invoice_id} already bills another order")
    pay = {"off_session": True, "payment_method": state.card.payment_method_id}
    paid, more = _with_retries(
        lambda: gateway.pay_invoice(invoice_id, pay, idempotency_key=key), key, context.sleep
    )
    if paid.status in ("declined", "authentication_required", "failed"):
        _void(gateway, invoice_id, key)
    return _settle(context, order, state, paid, requests + more)


def _void(gateway: InvoiceGateway, invoice_id: str, key: str) -> None:
    try:
        gateway.void_invoice(invoice_id, idempotency_key=key)
    except Exception:
        # An open invoice with auto_advance off is never charged by Stripe; support voids it.
        metrics.add_metric(name="AutoTopUpInvoicesNotVoided", unit=MetricUnit.Count, value=1)
        logger.exception("unpaid auto top-up invoice not voided", extra={"invoice": invoice_id})


def _settle(
    context: ChargeContext,
    order: Order,
    state: TopUpState,
    result: OffSessionResult,
    requests: int,
) -> AttemptEnd:
    """What Stripe's answer means for the attempt (a decline fails its order here)."""
    answer = StripeAnswer(result.payment_intent_id, message=result.message, requests=requests)
    if result.status == "succeeded":
        return AttemptEnd("succeeded", counts_as_failure=False, answer=answer)
    if result.status == "processing":
        # Not a success yet (a stalled 3-D Secure is no success): the webhook credits it.
        return AttemptEnd("processing", counts_as_failure=False, answer=answer)
    if result.status == "retryable":
        # Unknown, not declined: never counted. The order stays pending, so a charge Stripe
        # did make under this key is still credited by its payment_intent.succeeded.
        return AttemptEnd("provider_unavailable", counts_as_failure=False, answer=answer)
    answer = replace(answer, decline_code=result.code)
    if result.status == "provider_auth_failed":
        # Stripe refused our key: no charge was made, the order stays pending, the card is
        # not blamed (never counted), and the operator is alarmed (StripeAuthFailures).
        return AttemptEnd("provider_auth_failed", counts_as_failure=False, answer=answer)
    if result.status == "authentication_required":
        url, error = _recovery_checkout(context, order, state)
        return AttemptEnd(
            "authentication_required",
            counts_as_failure=True,
            pause_reason="authentication_required",
            recovery_url=url,
            recovery_error=error,
            answer=answer,
        )
    context.orders.mark(order, "failed", flag_reason=f"auto top-up {result.code}")
    return AttemptEnd(
        "declined" if result.status == "declined" else "error",
        counts_as_failure=True,
        disable_reason="card_expired" if result.code == "expired_card" else None,
        answer=answer,
    )


def _recovery_checkout(
    context: ChargeContext, order: Order, state: TopUpState
) -> tuple[str | None, str | None]:
    """(url, None): the on-session Checkout that pays the same order and clears the pause;
    (None, why) when it could not be made: the pause stands, and the reason is recorded,
    counted and alarmed, never swallowed. A session made but not attached to the order is
    expired, so no orphan payment page stays open in Stripe."""
    error = "recovery Checkout URLs are not configured (CHECKOUT_SUCCESS_URL/_CANCEL_URL)"
    session = None
    try:
        if context.recovery_urls is None:
            raise RuntimeError(error)
        params = recovery_checkout_params(
            order, state, context.recovery_urls, now_s=int(time.time()), billing=context.billing
        )
        session = context.gateway.create_checkout(
            params, idempotency_key=f"recovery-{order.order_id}"
        )
        context.orders.attach_session(
            order,
            session_id=session.session_id,
            checkout_url=session.url,
            expires_at=session.expires_at,
        )
    except Exception as failure:
        error = f"{type(failure).__name__}: {failure}"
        logger.exception("recovery checkout not created", extra={"order": order.order_id})
        metrics.add_metric(name="AutoTopUpRecoveryLinkFailures", unit=MetricUnit.Count, value=1)
        if session is not None:
            _expire_orphan(context, session.session_id)
        return None, error
    return session.url, None


def _expire_orphan(context: ChargeContext, session_id: str) -> None:
    try:
        context.gateway.expire_checkout(session_id)
    except Exception:
        # It expires by itself within RECOVERY_EXPIRES_S; the failure is already counted.
        logger.exception("orphan recovery checkout not expired", extra={"session": session_id})


def _look_up_stale(
    context: ChargeContext, order: Order, state: TopUpState, attempt: Attempt
) -> AttemptEnd:
    """An attempt past Stripe's idempotency window: what Stripe holds under its attempt id
    decides its end. A succeeded PaymentIntent is credited once through the webhook's
    path; none found means it was never charged: the attempt and its order are closed."""
    invoices = context.invoices
    if invoices is not None:
        found = invoices.find_invoice("attempt_id", attempt.attempt_id)
        if found is not None and found.status in ("processing", "declined"):
            # Made but never paid (open, draft or void): never charged. Void what is open.
            if found.status == "processing" and found.invoice_id:
                _void(invoices, found.invoice_id, attempt.attempt_id)
            found = None
    else:
        found = context.gateway.find_payment_intent("attempt_id", attempt.attempt_id)
    if found is None:
        context.orders.mark(order, "expired", flag_reason="auto top-up never charged")
        never = StripeAnswer(message="older than Stripe's idempotency window; never charged")
        return AttemptEnd("expired", counts_as_failure=False, answer=never)
    if found.status == "succeeded" and found.raw is not None and context.credit_found:
        context.credit_found(found.raw)
    return _settle(context, order, state, found, requests=1)


def _epoch_s(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
