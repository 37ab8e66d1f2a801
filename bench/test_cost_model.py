"""The cost model charges a Query for what it reads: the probe query keeps only the key
condition, with exactly the names and values it uses."""

from __future__ import annotations

from bench.cost_model import unfiltered

PK = {"S": "CUST#c1"}


def test_filter_projection_and_their_placeholders_are_dropped() -> None:
    query = {
        "TableName": "LedgerTable",
        "IndexName": "ledger-by-time",
        "KeyConditionExpression": "PK = :pk AND #sk < :before",
        "FilterExpression": "kind IN (:k0, :k1) AND #st = :active",
        "ProjectionExpression": "#st, amount_mt",
        "ExpressionAttributeNames": {"#sk": "ledger_sk", "#st": "hold_status"},
        "ExpressionAttributeValues": {
            ":pk": PK,
            ":before": {"S": "2026"},
            ":k0": {"S": "usage"},
            ":k1": {"S": "grant"},
            ":active": {"S": "active"},
        },
        "Limit": 20,
        "ScanIndexForward": False,
        "ConsistentRead": False,
        "ExclusiveStartKey": {"PK": PK, "SK": {"S": "TXN#x"}},
    }
    assert unfiltered(query) == {
        "TableName": "LedgerTable",
        "IndexName": "ledger-by-time",
        "KeyConditionExpression": "PK = :pk AND #sk < :before",
        "ExpressionAttributeNames": {"#sk": "ledger_sk"},
        "ExpressionAttributeValues": {":pk": PK, ":before": {"S": "2026"}},
        "Limit": 20,
        "ScanIndexForward": False,
        "ConsistentRead": False,
        "ExclusiveStartKey": {"PK": PK, "SK": {"S": "TXN#x"}},
    }


def test_names_disappear_when_the_key_condition_uses_none() -> None:
    query = {
        "TableName": "LedgerTable",
        "KeyConditionExpression": "PK = :pk",
        "FilterExpression": "attribute_not_exists(#st) OR #st = :active",
        "ExpressionAttributeNames": {"#st": "hold_status"},
        "ExpressionAttributeValues": {":pk": PK, ":active": {"S": "active"}},
    }
    assert unfiltered(query) == {
        "TableName": "LedgerTable",
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": PK},
    }


def test_the_original_query_is_left_as_it_was() -> None:
    query = {
        "KeyConditionExpression": "PK = :pk",
        "FilterExpression": "x = :x",
        "ExpressionAttributeValues": {":pk": PK, ":x": {"N": "1"}},
    }
    unfiltered(query)
    assert query["ExpressionAttributeValues"] == {":pk": PK, ":x": {"N": "1"}}


def test_a_seeded_vm_month_item_has_the_stores_key_and_one_attribute_a_day() -> None:
    from bench.cost_model import vm_month_item
    from token_billing.store.vm_usage import month_sk

    item = vm_month_item("c1", "2026-11", "vm-00007", range(2, 31))
    assert item["SK"] == {"S": month_sk("2026-11", "vm-00007")}
    assert sorted(name for name in item if name.startswith("d")) == [
        f"d{day:02d}" for day in range(2, 31)
    ]
