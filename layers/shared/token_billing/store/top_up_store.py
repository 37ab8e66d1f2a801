"""Auto top-up's data access: reads and conditional writes of the TOPUP item, its attempts
and the Stripe lookups (the items and records are in `top_up_records`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from token_billing.core.clock import utc_now_iso
from token_billing.core.errors import Conflict, ServiceUnavailable
from token_billing.store.codecs import AttributeValue, Item, item_str
from token_billing.store.conditions import condition_failed
from token_billing.store.order_records import Order
from token_billing.store.orders import new_order_item
from token_billing.store.table_layout import customer_pk
from token_billing.store.top_up_records import (
    ADMITTED,
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
    day_counter,
    lookup_key,
    month_counter,
    state_from_item,
    state_key,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class TopUpStore:
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
        values: dict[str, AttributeValue] = {
            ":enabled": {"BOOL": settings.enabled},
            ":package": {"S": settings.package_id},
            ":threshold": {"N": str(settings.threshold_mt)},
            ":target": {"N": str(settings.target_mt)},
            ":day": {"N": str(settings.max_charges_per_day)},
            ":one": {"N": "1"},
            ":cid": {"S": customer_id},
            ":now": {"S": utc_now_iso()},
        }
        sets = [
            "enabled = :enabled",
            "package_id = :package",
            "threshold_mt = :threshold",
            "target_mt = :target",
            "max_charges_per_day = :day",
            "customer_id = :cid",
            "entity = :entity",
            "updated_at = :now",
        ]
        values[":entity"] = {"S": "auto_top_up"}
        removes = []
        if settings.max_cents_per_month is not None:
            values[":month"] = {"N": str(settings.max_cents_per_month)}
            sets.append("max_cents_per_month = :month")
        if settings.consent_version is not None:
            assert settings.consent_at and settings.consent_by
            values[":cv"] = {"S": settings.consent_version}
            values[":cat"] = {"S": settings.consent_at}
            values[":cby"] = {"S": settings.consent_by}
            sets += ["consent_version = :cv", "consent_at = :cat", "consent_by = :cby"]
        if settings.enabled:
            removes.append("disabled_reason")
        expression = "SET " + ", ".join(sets) + " ADD settings_version :one"
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": state_key(customer_id),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if settings.enabled:
            kwargs["ConditionExpression"] = "attribute_exists(payment_method_id)"
        try:
            self._client.update_item(**kwargs)
        except ClientError as error:
            if condition_failed(error):
                raise Conflict(
                    "auto top-up needs a saved card: buy a pack with save_card first",
                    reason="card_required",
                ) from None
            raise

    def attach_stripe_customer(self, customer_id: str, stripe_customer_id: str) -> str:
        """Keep the customer's one Stripe Customer; the id already kept wins a race."""
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": state_key(customer_id),
                            "UpdateExpression": (
                                "SET stripe_customer_id = :scid, customer_id = :cid, "
                                "entity = :entity"
                            ),
                            "ConditionExpression": "attribute_not_exists(stripe_customer_id)",
                            "ExpressionAttributeValues": {
                                ":scid": {"S": stripe_customer_id},
                                ":cid": {"S": customer_id},
                                ":entity": {"S": "auto_top_up"},
                            },
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                **lookup_key("SCUS#", stripe_customer_id),
                                "entity": {"S": "stripe_customer"},
                                "customer_id": {"S": customer_id},
                            },
                        }
                    },
                ]
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
        values: dict[str, AttributeValue] = {
            ":pm": {"S": card.payment_method_id},
            ":now": {"S": saved_at},
            ":zero": {"N": "0"},
            ":cid": {"S": customer_id},
            ":entity": {"S": "auto_top_up"},
        }
        sets = [
            "payment_method_id = :pm",
            "card_saved_at = :now",
            "consecutive_failures = :zero",
            "customer_id = :cid",
            "entity = :entity",
        ]
        removes = ["paused_reason", "paused_at", "recovery_url", "disabled_reason"]
        for name, value in (
            ("card_brand", card.brand),
            ("card_last4", card.last4),
        ):
            if value:
                values[f":{name}"] = {"S": value}
                sets.append(f"{name} = :{name}")
            else:
                removes.append(name)
        for name, number in (("card_exp_month", card.exp_month), ("card_exp_year", card.exp_year)):
            if number:
                values[f":{name}"] = {"N": str(number)}
                sets.append(f"{name} = :{name}")
            else:
                removes.append(name)
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": state_key(customer_id),
                        "UpdateExpression": "SET "
                        + ", ".join(sets)
                        + " REMOVE "
                        + ", ".join(removes),
                        "ExpressionAttributeValues": values,
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            **lookup_key("PM#", card.payment_method_id),
                            "entity": {"S": "payment_method"},
                            "customer_id": {"S": customer_id},
                        },
                    }
                },
            ]
        )
        return True

    def remove_card(self, customer_id: str, payment_method_id: str, *, reason: str) -> bool:
        """The saved card is gone (detached, expired): auto top-up off, and why."""
        try:
            self._client.update_item(
                TableName=self._table,
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
        except ClientError as error:
            if condition_failed(error):
                return False  # another card is saved now, or none
            raise
        return True

    # ---- admission ----------------------------------------------------------------------

    def admit(self, state: TopUpState, admission: Admission) -> AdmissionResult:
        """One transaction: the TOPUP item's conditional update (enabled, same settings, a
        card, nothing in flight, not paused, within the caps), the attempt's Put and its
        pending order's Put. A refusal comes back with the item as its condition saw it."""
        try:
            self._client.transact_write_items(
                TransactItems=self._admission_items(state, admission)  # type: ignore[arg-type]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
            codes = [reason.get("Code") for reason in reasons]
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return AdmissionResult("duplicate")  # this crossing's attempt exists
            if codes and codes[0] == "ConditionalCheckFailed":
                current = state_from_item(state.customer_id, reasons[0].get("Item"))
                return AdmissionResult("refused", current)
            return AdmissionResult("lost_race")  # a conflicting transaction: nothing written
        return AdmissionResult("admitted")

    def _admission_items(self, state: TopUpState, admission: Admission) -> list[dict[str, Any]]:
        order = admission.order
        day_name, month_name = day_counter(admission.day), month_counter(admission.month)
        names = {"#dc": day_name, "#mc": month_name}
        removes = []
        if state.charge_day and state.charge_day != admission.day:
            names["#olddc"] = day_counter(state.charge_day)
            removes.append("#olddc")
        if state.charge_month and state.charge_month != admission.month:
            names["#oldmc"] = month_counter(state.charge_month)
            removes.append("#oldmc")
        month_limit = admission.max_cents_per_month - order.price_cents
        assert month_limit >= 0, "the caller refuses an attempt above the monthly cap"
        now = utc_now_iso()
        expression = (
            "SET in_flight = :att, in_flight_since = :now, charge_day = :day, "
            "charge_month = :month ADD #dc :one, #mc :amount"
        )
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        state_update = {
            "Update": {
                "TableName": self._table,
                "Key": state_key(state.customer_id),
                "UpdateExpression": expression,
                "ConditionExpression": (
                    "enabled = :true AND settings_version = :sv "
                    "AND attribute_exists(payment_method_id) "
                    "AND attribute_not_exists(in_flight) AND attribute_not_exists(paused_reason) "
                    "AND (attribute_not_exists(#dc) OR #dc < :maxday) "
                    "AND (attribute_not_exists(#mc) OR #mc <= :monthlimit)"
                ),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {
                    ":att": {"S": admission.attempt_id},
                    ":now": {"S": now},
                    ":day": {"S": admission.day},
                    ":month": {"S": admission.month},
                    ":one": {"N": "1"},
                    ":amount": {"N": str(order.price_cents)},
                    ":true": {"BOOL": True},
                    ":sv": {"N": str(admission.settings_version)},
                    ":maxday": {"N": str(admission.max_charges_per_day)},
                    ":monthlimit": {"N": str(month_limit)},
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        attempt_put = {
            "Put": {
                "TableName": self._table,
                "Item": self._attempt_item(admission, ADMITTED, now),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
        order_put = {
            "Put": {
                "TableName": self._table,
                "Item": new_order_item(order),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
        return [state_update, attempt_put, order_put]

    def _attempt_item(self, admission: Admission, status: str, now: str) -> Item:
        order = admission.order
        item: Item = {
            **attempt_key(order.customer_id, admission.version),
            "entity": {"S": "auto_top_up_attempt"},
            "attempt_id": {"S": admission.attempt_id},
            "customer_id": {"S": order.customer_id},
            "version": {"N": str(admission.version)},
            "status": {"S": status},
            "package_id": {"S": order.package_id},
            "packs": {"N": str(admission.packs)},
            "amount_cents": {"N": str(order.price_cents)},
            "currency": {"S": order.currency},
            "available_mt": {"N": str(admission.available_mt)},
            "target_mt": {"N": str(admission.target_mt)},
            "created_at": {"S": now},
        }
        if status == ADMITTED:
            item["order_id"] = {"S": order.order_id}
        else:
            item["ended_at"] = {"S": now}
        return item

    def record_refusal(self, admission: Admission, reason: str) -> None:
        """A crossing that admitted nothing, recorded as an attempt with the reason as its
        status; a redelivery of the crossing finds its record and writes nothing."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._attempt_item(admission, reason, utc_now_iso()),
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
        now = utc_now_iso()
        values: dict[str, AttributeValue] = {
            ":att": {"S": attempt.attempt_id},
            ":failures": {"N": str(write.consecutive_failures)},
            ":prev": {"N": str(write.previous_failures)},
            ":zero": {"N": "0"},
            ":now": {"S": now},
        }
        sets = ["consecutive_failures = :failures", "last_outcome_at = :now"]
        if write.paused_reason:
            values[":reason"] = {"S": write.paused_reason}
            sets += ["paused_reason = :reason", "paused_at = :now"]
            if write.recovery_url:
                values[":url"] = {"S": write.recovery_url}
                sets.append("recovery_url = :url")
        if write.disabled_reason:
            values[":false"] = {"BOOL": False}
            values[":disabled"] = {"S": write.disabled_reason}
            sets += ["enabled = :false", "disabled_reason = :disabled"]
        state_update = {
            "Update": {
                "TableName": self._table,
                "Key": state_key(attempt.customer_id),
                "UpdateExpression": "SET " + ", ".join(sets) + " REMOVE in_flight, in_flight_since",
                "ConditionExpression": (
                    "in_flight = :att AND (consecutive_failures = :prev OR "
                    "(attribute_not_exists(consecutive_failures) AND :prev = :zero))"
                ),
                "ExpressionAttributeValues": values,
            }
        }
        attempt_values: dict[str, AttributeValue] = {
            ":status": {"S": write.status},
            ":admitted": {"S": ADMITTED},
            ":now": {"S": now},
            ":requests": {"N": str(write.stripe_requests)},
        }
        attempt_sets = ["#status = :status", "ended_at = :now", "stripe_requests = :requests"]
        for name, text in (
            ("payment_intent_id", write.payment_intent_id),
            ("decline_code", write.decline_code),
            ("message", write.message),
        ):
            if text:
                attempt_values[f":{name}"] = {"S": text[:500]}
                attempt_sets.append(f"{name} = :{name}")
        attempt_update = {
            "Update": {
                "TableName": self._table,
                "Key": attempt_key(attempt.customer_id, attempt.version),
                "UpdateExpression": "SET " + ", ".join(attempt_sets),
                "ConditionExpression": "#status = :admitted",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": attempt_values,
            }
        }
        try:
            self._client.transact_write_items(TransactItems=[state_update, attempt_update])  # type: ignore[list-item]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
            codes = [r.get("Code") for r in reasons]
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return "already_ended"  # a redelivery, or a racing charger, ended it first
            return "lost_race"  # the TOPUP item moved on, or a conflicting transaction
        return "ended"

    def record_credit(self, customer_id: str, order: Order, *, clear_pause: bool) -> None:
        """The webhook credited an auto top-up order: the attempt says so, and a successful
        payment (the recovery checkout) clears a pause and the failure count."""
        if order.attempt_version is not None:
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key=attempt_key(customer_id, order.attempt_version),
                    UpdateExpression="SET credited = :true, credited_at = :now",
                    ConditionExpression="attribute_exists(PK)",
                    ExpressionAttributeValues={
                        ":true": {"BOOL": True},
                        ":now": {"S": utc_now_iso()},
                    },
                )
            except ClientError as error:
                if not condition_failed(error):
                    raise
            self.mark_paid_after_all(customer_id, order.attempt_version)
        if clear_pause:
            self.clear_pause(customer_id)

    def mark_paid_after_all(self, customer_id: str, version: int) -> None:
        """An attempt whose answer was lost (provider_unavailable) or pending (processing)
        was paid and credited after all: its outcome says so. Called by the credit and by
        the end of the attempt, so whichever of the two comes last converges on it."""
        try:
            self._client.update_item(
                TableName=self._table,
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
        except ClientError as error:
            if not condition_failed(error):
                raise

    def mark_recovered(self, customer_id: str, version: int) -> None:
        """An attempt that needed authentication was paid on-session."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=attempt_key(customer_id, version),
                UpdateExpression="SET #status = :recovered",
                ConditionExpression="#status = :auth",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":recovered": {"S": "recovered"},
                    ":auth": {"S": "authentication_required"},
                },
            )
        except ClientError as error:
            if not condition_failed(error):
                raise

    def clear_pause(self, customer_id: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=state_key(customer_id),
                UpdateExpression=(
                    "SET consecutive_failures = :zero REMOVE paused_reason, paused_at, recovery_url"
                ),
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues={":zero": {"N": "0"}},
            )
        except ClientError as error:
            if not condition_failed(error):
                raise
