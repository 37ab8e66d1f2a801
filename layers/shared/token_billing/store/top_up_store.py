"""Auto top-up's data access: reads and conditional writes of the TOPUP item, its attempts
and the Stripe lookups. The records and their keys are in `top_up_records`, the requests
in `top_up_items`; here they are sent, and a failed condition is said as a result. Every
decision (refuse, count a failure, pause) is the domain's: the store writes what it is
given, under conditions that keep racing writers from undoing each other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from token_billing.core.clock import utc_now_iso
from token_billing.core.errors import Conflict, ServiceUnavailable
from token_billing.store.codecs import item_str
from token_billing.store.conditions import condition_failed
from token_billing.store.table_layout import customer_pk
from token_billing.store.top_up_items import (
    admission_items,
    attempt_item,
    card_items,
    end_items,
    settings_update,
    stripe_customer_items,
)
from token_billing.store.top_up_records import (
    ATTEMPT_PREFIX,
    Admission,
    AdmissionResult,
    Attempt,
    EndResult,
    EndWrite,
    SavedCard,
    SettingsWrite,
    TopUpState,
    attempt_from_item,
    attempt_key,
    lookup_key,
    state_from_item,
    state_key,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class TopUpStore:
    """A customer's auto top-up: the TOPUP item, the attempts, the Stripe lookups."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # ---- reads --------------------------------------------------------------------------

    def get_state(self, customer_id: str, *, consistent: bool = True) -> TopUpState:
        response = self._client.get_item(
            TableName=self._table, Key=state_key(customer_id), ConsistentRead=consistent
        )
        return state_from_item(customer_id, response.get("Item"))  # type: ignore[arg-type]

    def get_attempt(self, customer_id: str, version: int) -> Attempt | None:
        response = self._client.get_item(
            TableName=self._table, Key=attempt_key(customer_id, version), ConsistentRead=True
        )
        item = response.get("Item")
        return attempt_from_item(item) if item else None  # type: ignore[arg-type]

    def recent_attempts(self, customer_id: str, *, limit: int = 10) -> list[Attempt]:
        """The newest attempts first: 1 Query (attempt keys sort by account version)."""
        assert 0 < limit <= 100
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": customer_pk(customer_id)},
                ":prefix": {"S": ATTEMPT_PREFIX},
            },
            ScanIndexForward=False,
            Limit=limit,
        )
        return [attempt_from_item(item) for item in response.get("Items", [])]  # type: ignore[arg-type]

    def customer_of(
        self, *, stripe_customer_id: str | None = None, payment_method_id: str | None = None
    ) -> str | None:
        """Our customer behind a Stripe Customer or a saved payment method."""
        if stripe_customer_id:
            key = lookup_key("SCUS#", stripe_customer_id)
        elif payment_method_id:
            key = lookup_key("PM#", payment_method_id)
        else:
            return None
        item = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get(
            "Item"
        )
        return item_str(item, "customer_id") if item else None  # type: ignore[arg-type]

    # ---- settings -----------------------------------------------------------------------

    def write_settings(self, customer_id: str, settings: SettingsWrite) -> None:
        """One conditional UpdateItem; enabling needs a saved card (Conflict, nothing written)."""
        try:
            self._client.update_item(
                **settings_update(self._table, customer_id, settings, utc_now_iso())
            )
        except ClientError as error:
            if not condition_failed(error):
                raise
            if settings.expected_settings_version is not None:
                raise Conflict(
                    "the auto top-up settings changed since they were read; read them again",
                    reason="settings_changed",
                ) from None
            raise Conflict(
                "auto top-up needs a saved card: buy a pack with save_card first",
                reason="card_required",
            ) from None

    def attach_stripe_customer(self, customer_id: str, stripe_customer_id: str) -> str:
        """Keep the customer's one Stripe Customer; the id already kept wins a race."""
        try:
            self._client.transact_write_items(
                TransactItems=stripe_customer_items(self._table, customer_id, stripe_customer_id)  # type: ignore[arg-type]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            kept = self.get_state(customer_id).stripe_customer_id
            if kept is None:
                raise ServiceUnavailable("the Stripe customer could not be recorded") from None
            return kept
        return stripe_customer_id

    def save_card(self, customer_id: str, card: SavedCard, *, saved_at: str) -> bool:
        """Record a card Stripe attached to the customer's Stripe Customer (from a verified
        webhook). A new card clears a pause and the failure count; True when it was new."""
        current = self.get_state(customer_id)
        if current.card and current.card.payment_method_id == card.payment_method_id:
            return False
        self._client.transact_write_items(
            TransactItems=card_items(self._table, customer_id, card, saved_at)  # type: ignore[arg-type]
        )
        return True

    def remove_card(self, customer_id: str, payment_method_id: str, *, reason: str) -> bool:
        """The saved card is gone (detached, expired): auto top-up off, and why. False when
        another card, or none, is saved now."""
        return self._update_if(
            Key=state_key(customer_id),
            UpdateExpression=(
                "SET enabled = :false, disabled_reason = :reason, updated_at = :now "
                "REMOVE payment_method_id, card_brand, card_last4, card_exp_month, "
                "card_exp_year"
            ),
            ConditionExpression="payment_method_id = :pm",
            ExpressionAttributeValues={
                ":false": {"BOOL": False},
                ":reason": {"S": reason},
                ":now": {"S": utc_now_iso()},
                ":pm": {"S": payment_method_id},
            },
        )

    # ---- admission ----------------------------------------------------------------------

    def admit(self, state: TopUpState, admission: Admission) -> AdmissionResult:
        """One transaction: the TOPUP item's conditional update (enabled, same settings, a
        card, nothing in flight, not paused, within the caps), the attempt's Put and its
        pending order's Put. A refusal comes back with the item as its condition saw it."""
        try:
            self._client.transact_write_items(
                TransactItems=admission_items(self._table, state, admission, utc_now_iso())  # type: ignore[arg-type]
            )
        except ClientError as error:
            reasons = _cancellation_reasons(error)
            codes = [reason.get("Code") for reason in reasons]
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return AdmissionResult("duplicate")  # this crossing's attempt exists
            if codes and codes[0] == "ConditionalCheckFailed":
                current = state_from_item(state.customer_id, reasons[0].get("Item"))
                return AdmissionResult("refused", current)
            return AdmissionResult("lost_race")  # a conflicting transaction: nothing written
        return AdmissionResult("admitted")

    def record_refusal(self, admission: Admission, reason: str) -> None:
        """A crossing that admitted nothing, recorded as an attempt with the reason as its
        status; a redelivery of the crossing finds its record and writes nothing."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=attempt_item(admission, reason, utc_now_iso()),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as error:
            if not condition_failed(error):
                raise

    # ---- the end of an attempt ----------------------------------------------------------

    def finish(self, attempt: Attempt, write: EndWrite) -> EndResult:
        """End an admitted attempt as the domain decided (`write`), freeing the in-flight
        slot: one transaction, conditional on the attempt still being admitted and the
        TOPUP item still holding the failure count the decision started from."""
        try:
            self._client.transact_write_items(
                TransactItems=end_items(self._table, attempt, write, utc_now_iso())  # type: ignore[arg-type]
            )
        except ClientError as error:
            codes = [reason.get("Code") for reason in _cancellation_reasons(error)]
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return "already_ended"  # a redelivery, or a racing charger, ended it first
            return "lost_race"  # the TOPUP item moved on, or a conflicting transaction
        return "ended"

    def mark_credited(self, customer_id: str, version: int) -> None:
        """The webhook credited this attempt's order: the attempt says so."""
        self._update_if(
            Key=attempt_key(customer_id, version),
            UpdateExpression="SET credited = :true, credited_at = :now",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues={":true": {"BOOL": True}, ":now": {"S": utc_now_iso()}},
        )

    def mark_paid_after_all(self, customer_id: str, version: int) -> None:
        """An attempt whose answer was lost (provider_unavailable) or pending (processing)
        and whose order was credited after all: its status becomes `succeeded`, only then."""
        self._update_if(
            Key=attempt_key(customer_id, version),
            UpdateExpression="SET #status = :succeeded",
            ConditionExpression="credited = :true AND #status IN (:lost, :processing)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":succeeded": {"S": "succeeded"},
                ":true": {"BOOL": True},
                ":lost": {"S": "provider_unavailable"},
                ":processing": {"S": "processing"},
            },
        )

    def mark_recovered(self, customer_id: str, version: int) -> None:
        """An attempt that needed authentication was paid on-session."""
        self._update_if(
            Key=attempt_key(customer_id, version),
            UpdateExpression="SET #status = :recovered",
            ConditionExpression="#status = :auth",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":recovered": {"S": "recovered"},
                ":auth": {"S": "authentication_required"},
            },
        )

    def clear_pause_item(self, customer_id: str) -> dict[str, Any]:
        """No pause, no recovery link, no failures counted: the TOPUP item's part of the
        credit transaction of an auto top-up's payment, so the pause ends with the credit,
        once, whichever delivery makes it (an auto top-up order's TOPUP item exists: its
        admission wrote it)."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": state_key(customer_id),
                "UpdateExpression": (
                    "SET consecutive_failures = :zero REMOVE paused_reason, paused_at, recovery_url"
                ),
                "ExpressionAttributeValues": {":zero": {"N": "0"}},
            }
        }

    def _update_if(self, **request: Any) -> bool:
        """One conditional UpdateItem; False when its condition said no (nothing to do)."""
        try:
            self._client.update_item(TableName=self._table, **request)
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True


def _cancellation_reasons(error: ClientError) -> list[dict[str, Any]]:
    """A cancelled transaction's reasons, one per item in order; any other error is raised."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        raise error
    reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
    return reasons
