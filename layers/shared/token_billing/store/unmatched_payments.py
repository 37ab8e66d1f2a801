"""Stripe objects that name an order of ours we cannot match: support items.

    PK                  SK          item
    UNMATCHED#<cs_id>   SESSION     a paid Checkout Session naming an order we lack: what it
                                    claims (customer, order, package, amount, currency), its
                                    payment intent, the event
    UNMATCHED#<in_id>   INVOICE     an invoice event (finalized, paid) naming an order we lack
                                    or disagreeing with it (`reason`)
    UNMATCHED#<ch_id>   CHARGE      a successful charge naming an order we lack or disagreeing
                                    with it (`reason`)

Written once per object (`attribute_not_exists`): a redelivered event records nothing new
and fires no second metric. Nothing here moves tokens; support refunds, credits or files
the document by hand.
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
# The support item's sort key by the kind of Stripe object it records.
SORT_KEYS = {"checkout_session": UNMATCHED_SK, "invoice": "INVOICE", "charge": "CHARGE"}
CLAIM_MAX_CHARS = 256  # whatever the metadata says, the item stays small


@dataclass(frozen=True, slots=True)
class UnmatchedPayment:
    object_id: str  # the Checkout Session's, invoice's or charge's id (see object_kind)
    event_id: str
    claimed_customer_id: str | None
    claimed_order_id: str | None
    claimed_package_id: str | None
    amount_total_cents: int | None
    currency: str | None
    payment_intent_id: str | None
    # Which Stripe object `object_id` names (a key of SORT_KEYS), and why it is unmatched
    # when the order exists but disagrees.
    object_kind: str = "checkout_session"
    reason: str | None = None


def _text(value: str | None) -> dict[str, str] | None:
    return None if value is None else {"S": value[:CLAIM_MAX_CHARS]}


class UnmatchedPayments:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def record(self, payment: UnmatchedPayment) -> bool:
        """Record the support item; False when this session was already recorded."""
        item: Item = {
            "PK": {"S": UNMATCHED_PREFIX + payment.object_id},
            "SK": {"S": SORT_KEYS[payment.object_kind]},
            "entity": {"S": "unmatched_payment"},
            "object": {"S": payment.object_kind},
            "session_id" if payment.object_kind == "checkout_session" else "object_id": {
                "S": payment.object_id
            },
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
            "reason": _text(payment.reason),
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

    def get(self, object_id: str, object_kind: str = "checkout_session") -> Item | None:
        """The support item of one Stripe object (a session, an invoice, a charge)."""
        response = self._client.get_item(
            TableName=self._table,
            Key={
                "PK": {"S": UNMATCHED_PREFIX + object_id},
                "SK": {"S": SORT_KEYS[object_kind]},
            },
            ConsistentRead=True,
        )
        item = response.get("Item")
        return item  # type: ignore[return-value]
