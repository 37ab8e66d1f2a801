"""The size and unit rules of bench/dynamo_units.py against AWS's documented examples."""

from __future__ import annotations

from typing import Any

import pytest

from bench.dynamo_units import (
    KB,
    IndexWrite,
    SecondaryIndex,
    index_write_units,
    item_size,
    number_size,
    query_read_units,
    read_units,
    secondary_indexes,
    significant_digits,
    value_size,
    write_units,
)

# Book 101 of the developer guide's ProductCatalog sample data. By the documented rules:
# Id 2+3, Title 5+14, ISBN 4+14, Authors 7+(3+7+1), Price 5+2, Dimensions 10+16,
# PageCount 9+2 ("500": trailing zeros trimmed), InPublication 13+1, ProductCategory 15+4.
BOOK_101: dict[str, dict[str, Any]] = {
    "Id": {"N": "101"},
    "Title": {"S": "Book 101 Title"},
    "ISBN": {"S": "111-1111111111"},
    "Authors": {"L": [{"S": "Author1"}]},
    "Price": {"N": "2"},
    "Dimensions": {"S": "8.5 x 11.0 x 0.5"},
    "PageCount": {"N": "500"},
    "InPublication": {"BOOL": True},
    "ProductCategory": {"S": "Book"},
}


def test_product_catalog_book_101_is_137_bytes() -> None:
    assert item_size(BOOK_101) == 137


def test_string_is_its_utf8_bytes_plus_the_name() -> None:
    assert item_size({"name": {"S": "abc"}}) == 4 + 3
    assert value_size({"S": "é"}) == 2  # two UTF-8 bytes
    assert item_size({"é": {"S": ""}}) == 2


@pytest.mark.parametrize(
    ("number", "digits", "size"),
    [
        ("0", 1, 2),
        ("7", 1, 2),
        ("12", 2, 2),
        ("123", 3, 3),
        ("500", 1, 2),  # trailing zeros trimmed
        ("0.0025", 2, 2),  # leading zeros trimmed
        ("-7700", 2, 2),
        ("1" * 38, 38, 20),  # the most digits a number may have
    ],
)
def test_number_is_one_byte_per_two_significant_digits_plus_one(
    number: str, digits: int, size: int
) -> None:
    assert significant_digits(number) == digits
    assert number_size(number) == size


def test_binary_counts_raw_bytes_not_base64() -> None:
    assert value_size({"B": b"\x00" * 100}) == 100


def test_null_and_boolean_are_one_byte() -> None:
    assert item_size({"flag": {"BOOL": False}, "none": {"NULL": True}}) == 4 + 1 + 4 + 1


def test_empty_list_and_map_are_three_bytes() -> None:
    assert item_size({"l": {"L": []}}) == 1 + 3
    assert item_size({"m": {"M": {}}}) == 1 + 3


def test_list_and_map_elements_cost_one_byte_each_plus_their_size() -> None:
    assert value_size({"L": [{"S": "ab"}, {"N": "1"}]}) == 3 + (2 + 1) + (2 + 1)
    # A map element also counts its name.
    assert value_size({"M": {"vm_runtime": {"N": "5000"}}}) == 3 + 10 + 2 + 1
    assert value_size({"M": {"outer": {"M": {}}}}) == 3 + 5 + 3 + 1


def test_sets_are_the_sum_of_their_elements() -> None:
    assert value_size({"SS": ["a", "bc"]}) == 3
    assert value_size({"NS": ["1", "22"]}) == 4
    assert value_size({"BS": [b"12", b"3"]}) == 3


def test_unknown_type_and_non_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown attribute type"):
        value_size({"X": "1"})
    with pytest.raises(ValueError, match="not a DynamoDB number"):
        number_size("abc")


# "DynamoDB read and write operations": reads round up to the next 4 KB.
@pytest.mark.parametrize(
    ("size", "strong", "eventual", "transactional"),
    [
        (3_500, 1, 0.5, 2),  # "reading a 3,500-byte item consumes ... a 4 KB item"
        (8 * KB, 2, 1, 4),  # "an 8 KB item: 2 strongly consistent, 1 eventual, 4 transactional"
        (10 * KB, 3, 1.5, 6),  # "a 10 KB item is rounded up to 12 KB"
        (0, 1, 0.5, 2),  # a read that finds nothing still costs the minimum
    ],
)
def test_read_units(size: int, strong: float, eventual: float, transactional: float) -> None:
    assert read_units(size, "strong") == strong
    assert read_units(size, "eventual") == eventual
    assert read_units(size, "transactional") == transactional


def test_a_query_rounds_its_items_total_once_per_page() -> None:
    # Usage by VM (issue 25): ten VM-month items of 400 B are one 4 KB unit, half of it
    # eventually consistent; 10,000 of them are three full 1 MB pages (2,621 items, 256
    # units each) and a last one of 2,137 items (209 units).
    assert query_read_units([400] * 10) == 0.5
    assert query_read_units([400] * 10, "strong") == 1.0
    assert query_read_units([]) == 0.5  # a Query that finds nothing still costs the minimum
    assert query_read_units([400] * 10_000) == 0.5 * (3 * 256 + 209)
    assert query_read_units([3 * KB, 3 * KB]) == read_units(6 * KB, "eventual") == 1.0


def test_batch_get_rounds_each_item_before_summing() -> None:
    # "1.5 KB and 6.5 KB items: 12 KB (4 KB + 8 KB), not 8 KB"
    assert read_units(1536) + read_units(6656) == 3


@pytest.mark.parametrize(
    ("size", "standard", "transactional"),
    [(1, 1, 2), (KB, 1, 2), (KB + 1, 2, 4), (1536, 2, 4), (10 * KB, 10, 20)],
)
def test_write_units(size: int, standard: int, transactional: int) -> None:
    assert write_units(size) == standard
    assert write_units(size, transactional=True) == transactional


LEDGER_TABLE = {
    "KeySchema": [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "ledger-by-time",
            "KeySchema": [
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "ledger_sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["kind"]},
        }
    ],
}


def test_sparse_include_index_holds_keys_and_listed_attributes_only() -> None:
    (index,) = secondary_indexes(LEDGER_TABLE)
    assert index == SecondaryIndex(
        "ledger-by-time", ("PK", "ledger_sk"), ("PK", "SK"), "INCLUDE", ("kind",)
    )
    entry: dict[str, dict[str, Any]] = {
        "PK": {"S": "CUST#1"},
        "SK": {"S": "TXN#1"},
        "ledger_sk": {"S": "t#1"},
        "kind": {"S": "usage"},
        "lines_z": {"B": b"\x00" * 5_000},
    }
    assert index.projected(entry) == {name: entry[name] for name in entry if name != "lines_z"}
    assert index_write_units([index], entry) == 1  # the 5,000 lines bytes are not projected
    account = {"PK": {"S": "CUST#1"}, "SK": {"S": "ACCOUNT"}}
    assert index_write_units([index], account) == 0  # no ledger_sk: not in the index


HOLDS_TABLE = {
    "KeySchema": LEDGER_TABLE["KeySchema"],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "active-holds",
            "KeySchema": [
                {"AttributeName": "active_shard", "KeyType": "HASH"},
                {"AttributeName": "active_expires_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["hold_id"]},
        }
    ],
}
HOLD: dict[str, dict[str, Any]] = {
    "PK": {"S": "CUST#1"},  # 2 + 6
    "SK": {"S": "HOLD#h1"},  # 2 + 7
    "hold_id": {"S": "h1"},  # 7 + 2
    "amount_mt": {"N": "15000"},  # not projected
    "active_shard": {"S": "HOLDS#3"},  # 12 + 7
    "active_expires_at": {"S": "2026-11-25T12:00:00Z"},  # 17 + 20
}
HOLD_ENTRY_BYTES = 8 + 9 + 9 + 19 + 37


def test_index_put_when_a_write_gives_the_item_its_keys() -> None:
    (index,) = secondary_indexes(HOLDS_TABLE)
    assert index.writes({}, HOLD) == [IndexWrite("put", HOLD_ENTRY_BYTES, 1)]


def test_index_delete_when_a_write_removes_a_key_attribute() -> None:
    (index,) = secondary_indexes(HOLDS_TABLE)
    closed = {name: value for name, value in HOLD.items() if name != "active_shard"}
    assert index.writes(HOLD, closed) == [IndexWrite("delete", HOLD_ENTRY_BYTES, 1)]
    assert index.writes(HOLD, {}) == [IndexWrite("delete", HOLD_ENTRY_BYTES, 1)]


def test_index_delete_and_put_when_a_key_value_changes() -> None:
    (index,) = secondary_indexes(HOLDS_TABLE)
    moved = {**HOLD, "active_expires_at": {"S": "2026-11-25T13:00:00Z"}}
    assert index.writes(HOLD, moved) == [
        IndexWrite("delete", HOLD_ENTRY_BYTES, 1),
        IndexWrite("put", HOLD_ENTRY_BYTES, 1),
    ]


def test_index_update_only_when_a_projected_attribute_changes() -> None:
    (index,) = secondary_indexes(HOLDS_TABLE)
    renamed = {**HOLD, "hold_id": {"S": "h2"}}
    assert index.writes(HOLD, renamed) == [IndexWrite("update", HOLD_ENTRY_BYTES, 1)]
    shrunk = {**HOLD, "amount_mt": {"N": "5000"}}  # not projected: the index is untouched
    assert index.writes(HOLD, shrunk) == []
    account = {"PK": {"S": "CUST#1"}, "SK": {"S": "ACCOUNT"}}
    assert index.writes(account, {**account, "n": {"N": "1"}}) == []
