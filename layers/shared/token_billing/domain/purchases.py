"""Buying a token pack: a pending order priced from the catalog, then a Stripe Checkout
Session for exactly that order. The client names a package, never a price or tokens."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from token_billing.core.clock import utc_now_iso
from token_billing.core.errors import InvalidRequest
from token_billing.core.units import format_tokens
from token_billing.domain.billing_settings import BillingSettings, checkout_document_params
from token_billing.domain.catalog import (
    CATALOG_VERSION,
    CURRENCY,
    TokenPackage,
    UnknownCatalogItem,
    get_package,
)
from token_billing.integrations.checkout_session import CheckoutSession
from token_billing.store.order_records import PENDING, Order
from token_billing.store.orders import OrderStore

# Stripe accepts 30 minutes to 24 hours; a short window keeps stale orders few.
CHECKOUT_EXPIRES_S = 30 * 60
MAX_URL_LENGTH = 2_048

CreateSession = Callable[..., CheckoutSession]


@dataclass(frozen=True, slots=True)
class CheckoutConfig:
    allowed_origins: frozenset[str]
    default_success_url: str
    default_cancel_url: str
    price_ids: dict[str, str]
    billing: BillingSettings = field(default_factory=BillingSettings)

    @classmethod
    def from_environment(cls) -> CheckoutConfig:
        origins = os.environ.get("CHECKOUT_REDIRECT_ORIGINS", "")
        price_ids = {}
        for pair in os.environ.get("STRIPE_PRICE_IDS", "").split(","):
            if "=" in pair:
                package_id, price_id = pair.split("=", 1)
                price_ids[package_id.strip()] = price_id.strip()
        return cls(
            allowed_origins=frozenset(
                o.strip().rstrip("/") for o in origins.split(",") if o.strip()
            ),
            default_success_url=os.environ.get("CHECKOUT_SUCCESS_URL", ""),
            default_cancel_url=os.environ.get("CHECKOUT_CANCEL_URL", ""),
            price_ids=price_ids,
            billing=BillingSettings.from_environment(),
        )


@dataclass(frozen=True, slots=True)
class PurchaseResult:
    order: Order
    checkout_url: str
    session_id: str


def new_order_id() -> str:
    """Creation time in hex first, so a customer's orders sort by time."""
    return f"ord_{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


def checked_redirect(url: str | None, default: str, field: str, config: CheckoutConfig) -> str:
    """A redirect URL the allow-list permits: its origin is configured, and it is https
    unless it points at this machine (the dev server)."""
    chosen = url or default
    if not chosen:
        raise InvalidRequest(f"{field} is required: no default is configured")
    if len(chosen) > MAX_URL_LENGTH:
        raise InvalidRequest(f"{field} is longer than {MAX_URL_LENGTH} characters")
    parts = urlsplit(chosen)
    origin = f"{parts.scheme}://{parts.netloc}"
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and (parts.hostname or "") in {"127.0.0.1", "localhost", "::1"}
    )
    if not secure or origin not in config.allowed_origins:
        raise InvalidRequest(
            f"{field} must start with one of the allowed origins: "
            + ", ".join(sorted(config.allowed_origins))
        )
    return chosen


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params, safe="{}")]))
    return urlunsplit(parts._replace(query=query))


def checkout_params(
    order: Order,
    package: TokenPackage,
    success_url: str,
    cancel_url: str,
    price_id: str | None,
    billing: BillingSettings | None = None,
    *,
    has_customer: bool = False,
) -> dict[str, Any]:
    """The Checkout Session for one order: everything Stripe needs and nothing the client
    chose but the package and the redirect URLs; the invoice, billing address, tax IDs and
    tax the operator turned on (`billing`)."""
    if price_id:
        line_item: dict[str, Any] = {"price": price_id, "quantity": 1}
    else:
        line_item = {
            "quantity": 1,
            "price_data": {
                "currency": order.currency,
                "unit_amount": order.price_cents,
                "product_data": {
                    "name": f"{package.name} token pack",
                    "description": (
                        f"{format_tokens(order.tokens_mt)} tokens"
                        + (f" + {format_tokens(order.bonus_mt)} bonus" if order.bonus_mt else "")
                    ),
                },
            },
        }
        if (
            billing and billing.stripe_tax
        ):  # catalog prices are before tax; a Stripe price says so itself
            line_item["price_data"]["tax_behavior"] = "exclusive"
    metadata = {
        "customer_id": order.customer_id,
        "package_id": order.package_id,
        "order_id": order.order_id,
        "catalog_version": order.catalog_version,
    }
    assert order.expires_at is not None
    documents = checkout_document_params(
        billing or BillingSettings(),
        metadata=metadata,
        total_mt=order.total_mt,
        has_customer=has_customer,
    )
    return {
        **documents,
        "mode": "payment",
        "line_items": [line_item],
        "client_reference_id": order.customer_id,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": with_query(
            success_url, order_id=order.order_id, session_id="{CHECKOUT_SESSION_ID}"
        ),
        "cancel_url": with_query(cancel_url, order_id=order.order_id),
        "expires_at": order.expires_at,
    }


def start_purchase(
    *,
    customer_id: str,
    package_id: str,
    success_url: str | None,
    cancel_url: str | None,
    idempotency_key: str | None,
    store: OrderStore,
    create_session: CreateSession,
    config: CheckoutConfig,
    save_card: bool = False,
    stripe_customer: Callable[[], str] | None = None,
) -> PurchaseResult:
    """Create (or, for a repeated Idempotency-Key, find) the order and its Checkout Session.

    With `save_card`, Checkout runs for the customer's one Stripe Customer and saves the card
    for off-session charges (auto top-up); the card itself arrives by verified webhook."""
    try:
        package = get_package(package_id)
    except UnknownCatalogItem as error:
        raise InvalidRequest(str(error)) from None
    success = checked_redirect(success_url, config.default_success_url, "success_url", config)
    cancel = checked_redirect(cancel_url, config.default_cancel_url, "cancel_url", config)
    hashed: list[object] = [package_id, success, cancel] + ([True] if save_card else [])
    request_hash = hashlib.sha256(json.dumps(hashed).encode()).hexdigest()
    draft = Order(
        order_id=new_order_id(),
        customer_id=customer_id,
        package_id=package.package_id,
        catalog_version=CATALOG_VERSION,
        price_cents=package.price_cents,
        currency=CURRENCY,
        tokens_mt=package.tokens_mt,
        bonus_mt=package.bonus_mt,
        status=PENDING,
        created_at=utc_now_iso(),
        expires_at=int(time.time()) + CHECKOUT_EXPIRES_S,
    )
    order = store.create(draft, idempotency_key=idempotency_key, request_hash=request_hash)
    if order.session_id and order.checkout_url:
        return PurchaseResult(order, order.checkout_url, order.session_id)  # a client retry
    price_id = config.price_ids.get(package.package_id) or package.stripe_price_id
    params = checkout_params(
        order, package, success, cancel, price_id, config.billing, has_customer=save_card
    )
    if save_card:
        assert stripe_customer is not None, "save_card needs the customer's Stripe Customer"
        params["customer"] = stripe_customer()
        params["payment_intent_data"]["setup_future_usage"] = "off_session"
    # Keyed by the order: a retry after a crash between Stripe and us gets the same session.
    session = create_session(params, idempotency_key=f"checkout-{order.order_id}")
    order = store.attach_session(
        order,
        session_id=session.session_id,
        checkout_url=session.url,
        expires_at=session.expires_at,
    )
    return PurchaseResult(order, session.url, session.session_id)
