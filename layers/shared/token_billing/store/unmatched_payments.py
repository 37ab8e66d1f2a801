"""Paid Checkout Sessions that name an order of ours we cannot find: support items.

    PK                  SK          item
    UNMATCHED#<cs_id>   SESSION     what the session claims (customer, order, package,
                                    amount, currency), its payment intent, the event

Written once per session (`attribute_not_exists`): a redelivered event records nothing new
and fires no second metric. Nothing here moves tokens; support refunds or credits by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from token_billing.core.clock import utc_now_iso
from token_billing.store.codecs import Item
from token_billing.store.conditions import condition_failed

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

UNMATCHED_PREFIX = "UNMATCHED#"
UNMATCHED_SK = "SESSION"
CLAIM_MAX_CHARS = 256  # whatever the metadata says, the item stays small


@dataclass(frozen=True, slots=True)
class UnmatchedPayment:
    session_id: str
    event_id: str
    claimed_customer_id: str | None
    claimed_order_id: str | None
    claimed_package_id: str | None
    amount_total_cents: int | None
    currency: str | None
    payment_intent_id: str | None


def _text(value: str | None) -> dict[str, str] | None:
    return None if value is None else {"S": value[:CLAIM_MAX_CHARS]}


class UnmatchedPayments:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def record(self, payment: UnmatchedPayment) -> bool:
        """Record the support item; False when this session was already recorded."""
        item: Item = {
            "PK": {"S": UNMATCHED_PREFIX + payment.session_id},
            "SK": {"S": UNMATCHED_SK},
            "entity": {"S": "unmatched_payment"},
            "session_id": {"S": payment.session_id},
            "event_id": {"S": payment.event_id},
            "support_status": {"S": "open"},
            "created_at": {"S": utc_now_iso()},
        }
        optional = {
            "claimed_customer_id": _text(payment.claimed_customer_id),
            "claimed_order_id": _text(payment.claimed_order_id),
            "claimed_package_id": _text(payment.claimed_package_id),
            "currency": _text(payment.currency),
            "payment_intent_id": _text(payment.payment_intent_id),
        }
        item.update({name: value for name, value in optional.items() if value is not None})
        if payment.amount_total_cents is not None:
            item["amount_total_cents"] = {"N": str(payment.amount_total_cents)}
        try:
            self._client.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(PK)"
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def get(self, session_id: str) -> Item | None:
        response = self._client.get_item(
            TableName=self._table,
            Key={"PK": {"S": UNMATCHED_PREFIX + session_id}, "SK": {"S": UNMATCHED_SK}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return item  # type: ignore[return-value]
