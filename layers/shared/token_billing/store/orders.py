"""Orders: data access for token-pack purchases. Knows items, nothing of HTTP or Stripe.

    PK              SK                      item
    CUST#<id>       ORDER#<order_id>        the order: price and tokens copied from the
                                            catalog at purchase time, status, Stripe ids
    CUST#<id>       PURCHASEKEY#<hash>      a client's Idempotency-Key -> its order
    PI#<pi_id>      PAYMENT                 payment intent -> (customer, order), for
                                            refunds and disputes, written with the credit
    CS#<cs_id>      SESSION                 Checkout Session -> (customer, order), written
                                            when the session is attached, for the webhook

Order ids (`purchases.new_order_id`) start with their creation time in hex, so a
customer's orders sort by key in time order.
Statuses: pending -> paid | expired | failed | flagged; paid -> partially_refunded |
refunded | disputed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from token_billing.core.clock import utc_now_iso
from token_billing.core.errors import IdempotencyKeyReused, NotFound
from token_billing.store.codecs import AttributeValue, Item, attr_s
from token_billing.store.conditions import condition_failed
from token_billing.store.order_records import PENDING, Order, PaidAmounts, order_from_item
from token_billing.store.table_layout import customer_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ORDER_PREFIX = "ORDER#"
PURCHASE_KEY_PREFIX = "PURCHASEKEY#"
PAYMENT_SK = "PAYMENT"
SESSION_SK = "SESSION"


def _order_item(order: Order) -> Item:
    """The attributes every pending order's item carries."""
    item: Item = {
        **order_key(order.customer_id, order.order_id),
        "entity": {"S": "order"},
        "order_id": {"S": order.order_id},
        "customer_id": {"S": order.customer_id},
        "package_id": {"S": order.package_id},
        "catalog_version": {"S": order.catalog_version},
        "price_cents": {"N": str(order.price_cents)},
        "currency": {"S": order.currency},
        "tokens_mt": {"N": str(order.tokens_mt)},
        "bonus_mt": {"N": str(order.bonus_mt)},
        "status": {"S": order.status},
        "created_at": {"S": order.created_at},
    }
    if order.expires_at is not None:
        item["expires_at"] = {"N": str(order.expires_at)}
    return item


def new_order_item(order: Order) -> Item:
    """A pending order's item, for writers outside `create` (the auto top-up admission)."""
    item = _order_item(order)
    item["kind"] = {"S": order.kind}
    item["packs"] = {"N": str(order.packs)}
    if order.attempt_version is not None:
        item["attempt_version"] = {"N": str(order.attempt_version)}
    return item


class OrderConditionFailed(Exception):
    """An order update's condition failed: the order moved on since it was read."""


def order_key(customer_id: str, order_id: str) -> dict[str, AttributeValue]:
    return {"PK": {"S": customer_pk(customer_id)}, "SK": {"S": ORDER_PREFIX + order_id}}


def payment_key(payment_intent_id: str) -> dict[str, AttributeValue]:
    return {"PK": {"S": "PI#" + payment_intent_id}, "SK": {"S": PAYMENT_SK}}


def session_key(session_id: str) -> dict[str, AttributeValue]:
    return {"PK": {"S": "CS#" + session_id}, "SK": {"S": SESSION_SK}}


class OrderStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @property
    def table_name(self) -> str:
        return self._table

    @property
    def client(self) -> DynamoDBClient:
        return self._client

    def create(self, order: Order, *, idempotency_key: str | None, request_hash: str) -> Order:
        """Write a new pending order; with a client key, return the key's first order instead.

        One transaction writes the order and the key record, so a key names exactly one
        order even when two retries race.
        """
        item = _order_item(order)
        put_order = {
            "Put": {
                "TableName": self._table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
        if idempotency_key is None:
            self._client.transact_write_items(TransactItems=[put_order])  # type: ignore[list-item]
            return order
        key_hash = hashlib.sha256(idempotency_key.encode()).hexdigest()
        put_key = {
            "Put": {
                "TableName": self._table,
                "Item": {
                    "PK": {"S": customer_pk(order.customer_id)},
                    "SK": {"S": PURCHASE_KEY_PREFIX + key_hash},
                    "entity": {"S": "purchase_key"},
                    "order_id": {"S": order.order_id},
                    "request_hash": {"S": request_hash},
                    "created_at": {"S": order.created_at},
                },
                "ConditionExpression": "attribute_not_exists(PK)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        try:
            self._client.transact_write_items(TransactItems=[put_order, put_key])  # type: ignore[list-item]
            return order
        except ClientError as error:
            reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
            if len(reasons) < 2 or reasons[1].get("Code") != "ConditionalCheckFailed":
                raise
            existing: Item = reasons[1]["Item"]
        if existing["request_hash"]["S"] != request_hash:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used for a different purchase"
            )
        return self.get(order.customer_id, existing["order_id"]["S"])

    def get(self, customer_id: str, order_id: str) -> Order:
        response = self._client.get_item(
            TableName=self._table, Key=order_key(customer_id, order_id), ConsistentRead=True
        )
        item = response.get("Item")
        if not item:
            raise NotFound(f"order {order_id!r} not found")
        return order_from_item(item)  # type: ignore[arg-type]

    def find(self, customer_id: str, order_id: str) -> Order | None:
        try:
            return self.get(customer_id, order_id)
        except NotFound:
            return None

    def attach_session(
        self, order: Order, *, session_id: str, checkout_url: str, expires_at: int
    ) -> Order:
        """Record the Checkout Session on a still-pending order, and the session -> order
        link the webhook finds the order by (the id Stripe generated, not its metadata)."""
        self._client.put_item(
            TableName=self._table,
            Item={
                **session_key(session_id),
                "entity": {"S": "checkout_session"},
                "customer_id": {"S": order.customer_id},
                "order_id": {"S": order.order_id},
            },
        )
        self._client.update_item(
            TableName=self._table,
            Key=order_key(order.customer_id, order.order_id),
            UpdateExpression=(
                "SET session_id = :sid, checkout_url = :url, expires_at = :exp, updated_at = :now"
            ),
            ConditionExpression="#status = :pending",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":sid": {"S": session_id},
                ":url": {"S": checkout_url},
                ":exp": {"N": str(expires_at)},
                ":now": {"S": utc_now_iso()},
                ":pending": {"S": PENDING},
            },
        )
        return self.get(order.customer_id, order.order_id)

    def mark(
        self,
        order: Order,
        status: str,
        *,
        from_statuses: tuple[str, ...] = (PENDING,),
        flag_reason: str | None = None,
    ) -> bool:
        """Move an order to `status` if it is still in one of `from_statuses`, recording
        why when it is flagged or failed (`flag_reason`).

        False when it had already moved on: a late or repeated event changes nothing.
        """
        extra = {} if flag_reason is None else {"flag_reason": attr_s(flag_reason)}
        names = {"#status": "status"}
        values: dict[str, AttributeValue] = {":status": {"S": status}, ":now": {"S": utc_now_iso()}}
        sets = ["#status = :status", "updated_at = :now"]
        for index, (name, value) in enumerate(sorted(extra.items())):
            names[f"#x{index}"] = name
            values[f":x{index}"] = value
            sets.append(f"#x{index} = :x{index}")
        allowed = []
        for index, from_status in enumerate(from_statuses):
            values[f":from{index}"] = {"S": from_status}
            allowed.append(f":from{index}")
        try:
            self._client.update_item(
                TableName=self._table,
                Key=order_key(order.customer_id, order.order_id),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=f"#status IN ({', '.join(allowed)})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def paid_transition(
        self,
        order: Order,
        *,
        payment_intent_id: str | None,
        session_id: str | None,
        amounts: PaidAmounts | None = None,
    ) -> dict[str, Any]:
        """The order's part of a credit transaction: pending -> paid, only if the order still
        says what was paid for (price, currency, customer, package); with what was paid
        (`amounts`: subtotal, tax, total) recorded beside it."""
        values: dict[str, AttributeValue] = {
            ":paid": {"S": "paid"},
            ":pending": {"S": PENDING},
            ":now": {"S": utc_now_iso()},
            ":price": {"N": str(order.price_cents)},
            ":currency": {"S": order.currency},
            ":package": {"S": order.package_id},
        }
        sets = "#status = :paid, paid_at = :now, updated_at = :now"
        if session_id:  # an off-session auto top-up is paid by its PaymentIntent alone
            values[":sid"] = {"S": session_id}
            sets += ", session_id = :sid"
        if payment_intent_id:
            values[":pi"] = {"S": payment_intent_id}
            sets += ", payment_intent_id = :pi"
        if amounts is not None:
            values[":subtotal"] = {"N": str(amounts.subtotal_cents)}
            values[":tax"] = {"N": str(amounts.tax_cents)}
            values[":total"] = {"N": str(amounts.total_cents)}
            sets += ", subtotal_cents = :subtotal, tax_cents = :tax, total_cents = :total"
        return {
            "Update": {
                "TableName": self._table,
                "Key": order_key(order.customer_id, order.order_id),
                "UpdateExpression": "SET " + sets,
                "ConditionExpression": (
                    "#status = :pending AND price_cents = :price AND currency = :currency "
                    "AND package_id = :package"
                ),
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def payment_link(self, order: Order, payment_intent_id: str) -> dict[str, Any]:
        """The payment intent -> order record, written in the credit transaction."""
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    **payment_key(payment_intent_id),
                    "entity": {"S": "payment"},
                    "customer_id": {"S": order.customer_id},
                    "order_id": {"S": order.order_id},
                },
                "ConditionExpression": "attribute_not_exists(PK) OR order_id = :oid",
                "ExpressionAttributeValues": {":oid": {"S": order.order_id}},
            }
        }

    def link_payment(self, order: Order, payment_intent_id: str) -> bool:
        """The payment intent -> order record on its own, for a payment the credit could not
        name (an invoice's, learnt from `invoice_payment.paid`); False when that payment
        intent already names another order."""
        try:
            self._client.put_item(**self.payment_link(order, payment_intent_id)["Put"])
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def apply(self, transition: Mapping[str, Any]) -> None:
        """Run one transaction item built here (e.g. a clawback transition) on its own."""
        update = dict(transition["Update"])
        update.pop("ReturnValuesOnConditionCheckFailure", None)
        try:
            self._client.update_item(**update)
        except ClientError as error:
            if condition_failed(error):
                raise OrderConditionFailed(str(update["Key"])) from None
            raise

    def order_for_session(self, session_id: str) -> Order | None:
        """The order a Checkout Session was created for, by the session's own id."""
        response = self._client.get_item(
            TableName=self._table, Key=session_key(session_id), ConsistentRead=True
        )
        item = response.get("Item")
        if not item:
            return None
        return self.find(item["customer_id"]["S"], item["order_id"]["S"])

    def order_for_payment(self, payment_intent_id: str) -> Order | None:
        response = self._client.get_item(
            TableName=self._table, Key=payment_key(payment_intent_id), ConsistentRead=True
        )
        item = response.get("Item")
        if not item:
            return None
        return self.find(item["customer_id"]["S"], item["order_id"]["S"])

    def clawback_transition(
        self,
        order: Order,
        *,
        refunded_cents: int,
        disputed_cents: int,
        clawed_back_mt: int,
        status: str,
    ) -> dict[str, Any]:
        """The order's part of a clawback transaction, conditional on the clawed-back total
        it was computed from (a concurrent refund event makes one of the two retry)."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": order_key(order.customer_id, order.order_id),
                "UpdateExpression": (
                    "SET refunded_cents = :ref, disputed_cents = :dis, clawed_back_mt = :cb, "
                    "#status = :status, updated_at = :now"
                ),
                "ConditionExpression": (
                    "(attribute_not_exists(clawed_back_mt) AND :prev = :zero) "
                    "OR clawed_back_mt = :prev"
                ),
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":ref": {"N": str(refunded_cents)},
                    ":dis": {"N": str(disputed_cents)},
                    ":cb": {"N": str(clawed_back_mt)},
                    ":status": {"S": status},
                    ":now": {"S": utc_now_iso()},
                    ":prev": {"N": str(order.clawed_back_mt)},
                    ":zero": {"N": "0"},
                },
            }
        }

    def list_for_customer(
        self, customer_id: str, *, limit: int, cursor: Mapping[str, AttributeValue] | None = None
    ) -> tuple[list[Order], dict[str, AttributeValue] | None]:
        """A page of a customer's orders, newest first, and the key to continue from."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": customer_pk(customer_id)},
                ":prefix": {"S": ORDER_PREFIX},
            },
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = cursor
        response = self._client.query(**kwargs)
        orders = [order_from_item(item) for item in response.get("Items", [])]  # type: ignore[arg-type]
        return orders, response.get("LastEvaluatedKey")  # type: ignore[return-value]

    def iter_paid_orders(self, customer_id: str) -> Iterator[Order]:
        cursor: dict[str, AttributeValue] | None = None
        while True:
            orders, cursor = self.list_for_customer(customer_id, limit=100, cursor=cursor)
            yield from (order for order in orders if order.paid_at)
            if not cursor:
                return
