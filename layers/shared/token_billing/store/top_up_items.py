"""What auto top-up writes, as DynamoDB requests built from its records (`top_up_records`):
the settings update, the card and Stripe Customer items, the admission's transaction, an
attempt's item and its end. `TopUpStore` sends them and says what a failure meant."""

from __future__ import annotations

from typing import Any

from token_billing.store.codecs import AttributeValue, Item
from token_billing.store.orders import new_order_item
from token_billing.store.top_up_records import (
    ADMITTED,
    Admission,
    Attempt,
    EndWrite,
    SavedCard,
    SettingsWrite,
    TopUpState,
    attempt_key,
    day_counter,
    lookup_key,
    month_counter,
    state_key,
)

TopUpRequest = dict[str, Any]  # an UpdateItem's parameters, or a transaction's item
ATTEMPT_TEXT_MAX_CHARS = 500  # what an attempt keeps of each text Stripe gave (ids, codes, message)


def settings_update(
    table: str, customer_id: str, settings: SettingsWrite, now: str
) -> TopUpRequest:
    """The settings' one UpdateItem: enabling is conditional on a saved card."""
    values: dict[str, AttributeValue] = {
        ":enabled": {"BOOL": settings.enabled},
        ":package": {"S": settings.package_id},
        ":threshold": {"N": str(settings.threshold_mt)},
        ":target": {"N": str(settings.target_mt)},
        ":day": {"N": str(settings.max_charges_per_day)},
        ":one": {"N": "1"},
        ":cid": {"S": customer_id},
        ":now": {"S": now},
        ":by": {"S": settings.changed_by},
    }
    sets = [
        "updated_by = :by",
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
    kwargs: TopUpRequest = {
        "TableName": table,
        "Key": state_key(customer_id),
        "UpdateExpression": expression,
        "ExpressionAttributeValues": values,
    }
    conditions = []
    if settings.enabled:
        conditions.append("attribute_exists(payment_method_id)")
    if settings.expected_settings_version is not None:
        values[":sv"] = {"N": str(settings.expected_settings_version)}
        conditions.append(
            "settings_version = :sv"
            if settings.expected_settings_version
            else "(attribute_not_exists(settings_version) OR settings_version = :sv)"
        )
    if conditions:
        kwargs["ConditionExpression"] = " AND ".join(conditions)
    return kwargs


def stripe_customer_items(
    table: str, customer_id: str, stripe_customer_id: str
) -> list[TopUpRequest]:
    """The Stripe Customer kept on the TOPUP item (only if none is) and its lookup item."""
    return [
        {
            "Update": {
                "TableName": table,
                "Key": state_key(customer_id),
                "UpdateExpression": (
                    "SET stripe_customer_id = :scid, customer_id = :cid, entity = :entity"
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
                "TableName": table,
                "Item": {
                    **lookup_key("SCUS#", stripe_customer_id),
                    "entity": {"S": "stripe_customer"},
                    "customer_id": {"S": customer_id},
                },
            }
        },
    ]


def card_items(table: str, customer_id: str, card: SavedCard, saved_at: str) -> list[TopUpRequest]:
    """A newly saved card on the TOPUP item (clearing a pause, the failure count and a
    disabling) and its payment method's lookup item."""
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
    return [
        {
            "Update": {
                "TableName": table,
                "Key": state_key(customer_id),
                "UpdateExpression": "SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes),
                "ExpressionAttributeValues": values,
            }
        },
        {
            "Put": {
                "TableName": table,
                "Item": {
                    **lookup_key("PM#", card.payment_method_id),
                    "entity": {"S": "payment_method"},
                    "customer_id": {"S": customer_id},
                },
            }
        },
    ]


def admission_items(
    table: str, state: TopUpState, admission: Admission, now: str
) -> list[TopUpRequest]:
    """The admission's transaction: the TOPUP item's conditional update, the attempt's Put
    and its pending order's Put (both only if new: a redelivered crossing collides)."""
    order = admission.order
    attempt_put = {
        "Put": {
            "TableName": table,
            "Item": attempt_item(admission, ADMITTED, now),
            "ConditionExpression": "attribute_not_exists(PK)",
        }
    }
    order_put = {
        "Put": {
            "TableName": table,
            "Item": new_order_item(order),
            "ConditionExpression": "attribute_not_exists(PK)",
        }
    }
    return [_admission_state_update(table, state, admission, now), attempt_put, order_put]


def _admission_state_update(
    table: str, state: TopUpState, admission: Admission, now: str
) -> TopUpRequest:
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
    expression = (
        "SET in_flight = :att, in_flight_since = :now, charge_day = :day, "
        "charge_month = :month ADD #dc :one, #mc :amount"
    )
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    return {
        "Update": {
            "TableName": table,
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


def attempt_item(admission: Admission, status: str, now: str) -> Item:
    """An attempt's item: admitted (with its order) or refused (ended at once)."""
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


def end_items(table: str, attempt: Attempt, write: EndWrite, now: str) -> list[TopUpRequest]:
    """The end's transaction: the TOPUP item as decided (only if it still holds the attempt
    in flight and the failure count decided from) and the attempt's outcome (only if it is
    still admitted)."""
    return [
        _end_state_update(table, attempt, write, now),
        _end_attempt_update(table, attempt, write, now),
    ]


def _end_state_update(table: str, attempt: Attempt, write: EndWrite, now: str) -> TopUpRequest:
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
    return {
        "Update": {
            "TableName": table,
            "Key": state_key(attempt.customer_id),
            "UpdateExpression": "SET " + ", ".join(sets) + " REMOVE in_flight, in_flight_since",
            "ConditionExpression": (
                "in_flight = :att AND (consecutive_failures = :prev OR "
                "(attribute_not_exists(consecutive_failures) AND :prev = :zero))"
            ),
            "ExpressionAttributeValues": values,
        }
    }


def _end_attempt_update(table: str, attempt: Attempt, write: EndWrite, now: str) -> TopUpRequest:
    values: dict[str, AttributeValue] = {
        ":status": {"S": write.status},
        ":admitted": {"S": ADMITTED},
        ":now": {"S": now},
        ":requests": {"N": str(write.stripe_requests)},
    }
    sets = ["#status = :status", "ended_at = :now", "stripe_requests = :requests"]
    for name, text in (
        ("payment_intent_id", write.payment_intent_id),
        ("decline_code", write.decline_code),
        ("message", write.message),
        ("recovery_error", write.recovery_error),
    ):
        if text:
            values[f":{name}"] = {"S": text[:ATTEMPT_TEXT_MAX_CHARS]}
            sets.append(f"{name} = :{name}")
    return {
        "Update": {
            "TableName": table,
            "Key": attempt_key(attempt.customer_id, attempt.version),
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": "#status = :admitted",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": values,
        }
    }
