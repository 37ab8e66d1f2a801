"""An order's billing documents: its Stripe invoice (id, number, hosted page, PDF) and its
charge's receipt. Data access only; the verified webhook events
that carry them decide what to write (`domain/billing_documents.py`).

Each write is ONE conditional UpdateItem on the order's item that moves no tokens and
never regresses, whatever the order of arrival or how often an event is redelivered:

- it never creates an item (`attribute_exists(PK)`): an event for an order we lack writes
  nothing;
- it is keyed by the document's id: the first invoice (charge) recorded is the order's, and
  an event naming another one changes nothing (`conflict`);
- every field is written once (`if_not_exists`): a later event can add what an earlier one
  lacked (an `invoice.finalized` before the number was known, a session that only knew the
  invoice id), never change what is there.

1 WCU per write (the order item is under 1 KB); a redelivery costs the same and changes
nothing.

    PK              SK          item
    IN#<in_id>      INVOICE     invoice -> (customer, order): written by the auto top-up
                                charger for the invoice it made, before paying it, so that
                                `invoice_payment.paid` finds the order of the payment
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import ClientError

from token_billing.store.codecs import AttributeValue, Item
from token_billing.store.conditions import condition_failed
from token_billing.store.orders import order_key

INVOICE_LINK_PREFIX = "IN#"
INVOICE_LINK_SK = "INVOICE"

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# recorded: a field that was absent is written now. unchanged: every field was known.
# conflict: the order already names another invoice (charge). missing: no such order.
DocumentWrite = Literal["recorded", "unchanged", "conflict", "missing"]
URL_MAX_CHARS = 2_048  # Stripe's URLs are far shorter; whatever arrives, the item stays small


@dataclass(frozen=True, slots=True)
class InvoiceDetails:
    """What a verified event says about an order's invoice; None where it does not say."""

    invoice_id: str
    number: str | None = None
    hosted_url: str | None = None
    pdf_url: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiptDetails:
    """A successful charge of an order and its receipt's address."""

    charge_id: str
    receipt_url: str | None


class OrderDocuments:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def record_invoice(
        self, customer_id: str, order_id: str, invoice: InvoiceDetails
    ) -> tuple[DocumentWrite, str | None]:
        """Write what is new about the order's invoice. Returns the write's result and the
        invoice id the order names afterwards (another one on `conflict`)."""
        fields: dict[str, AttributeValue | None] = {
            "invoice_number": _text(invoice.number),
            "invoice_url": _text(invoice.hosted_url),
            "invoice_pdf": _text(invoice.pdf_url),
        }
        return self._write_once(customer_id, order_id, "invoice_id", invoice.invoice_id, fields)

    def record_receipt(
        self, customer_id: str, order_id: str, receipt: ReceiptDetails
    ) -> tuple[DocumentWrite, str | None]:
        """Write the order's successful charge and its receipt URL, once."""
        fields = {"receipt_url": _text(receipt.receipt_url)}
        return self._write_once(customer_id, order_id, "charge_id", receipt.charge_id, fields)

    def link_invoice(self, customer_id: str, order_id: str, invoice_id: str) -> bool:
        """Record which order an invoice bills (the charger, before it pays the invoice);
        False when the invoice already names another order."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **_invoice_key(invoice_id),
                    "entity": {"S": "invoice_link"},
                    "customer_id": {"S": customer_id},
                    "order_id": {"S": order_id},
                },
                ConditionExpression="attribute_not_exists(PK) OR order_id = :oid",
                ExpressionAttributeValues={":oid": {"S": order_id}},
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def order_of_invoice(self, invoice_id: str) -> tuple[str, str] | None:
        """(customer id, order id) of the order an invoice of ours bills, if we made it."""
        item = self._client.get_item(
            TableName=self._table, Key=_invoice_key(invoice_id), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return item["customer_id"]["S"], item["order_id"]["S"]

    def _write_once(
        self,
        customer_id: str,
        order_id: str,
        id_name: str,
        document_id: str,
        fields: dict[str, AttributeValue | None],
    ) -> tuple[DocumentWrite, str | None]:
        present = {name: value for name, value in fields.items() if value is not None}
        names = {"#id": id_name}
        values: dict[str, AttributeValue] = {":id": {"S": document_id}}
        sets = ["#id = if_not_exists(#id, :id)"]
        for index, (name, value) in enumerate(sorted(present.items())):
            names[f"#f{index}"] = name
            values[f":f{index}"] = value
            sets.append(f"#f{index} = if_not_exists(#f{index}, :f{index})")
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=order_key(customer_id, order_id),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=(
                    "attribute_exists(PK) AND (attribute_not_exists(#id) OR #id = :id)"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not condition_failed(error):
                raise
            current: Item | None = error.response.get("Item")  # type: ignore[assignment]
            if not current:
                return "missing", None
            return "conflict", current[id_name]["S"]
        before: Item = response.get("Attributes") or {}  # type: ignore[assignment]
        added = [name for name in (id_name, *present) if name not in before]
        return ("recorded" if added else "unchanged"), document_id


def _invoice_key(invoice_id: str) -> dict[str, AttributeValue]:
    return {"PK": {"S": INVOICE_LINK_PREFIX + invoice_id}, "SK": {"S": INVOICE_LINK_SK}}


def _text(value: str | None) -> AttributeValue | None:
    return None if not value else {"S": value[:URL_MAX_CHARS]}
