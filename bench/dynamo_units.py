"""DynamoDB item sizes and capacity units by AWS's published rules.

DynamoDB Local's `ConsumedCapacity` is not used: it under-reports transactions. The rules
(developer guide, "DynamoDB item sizes and formats" and "DynamoDB read and write
operations"):

- an item's size is the sum of its attribute names (UTF-8 bytes) and values;
- string: UTF-8 bytes; binary: raw bytes (not base64); null and boolean: 1 byte;
- number: about 1 byte per two significant digits + 1 byte (leading and trailing zeros
  trimmed; AWS calls this an approximation and documents nothing for the sign);
- list and map: 3 bytes + the size of each element + 1 byte per element (a map's element
  counts its name too); sets: the sum of their elements;
- a standard write costs 1 unit per started KB, a transactional write 2 per started KB;
  `UpdateItem` is charged for the larger of the item before and after;
- a strongly consistent read costs 1 unit per started 4 KB, eventually consistent half
  that, transactional twice that; a read that finds nothing still costs the minimum;
- a global secondary index spends 1 standard write unit per started KB of its entry: a put
  when a write gives an item the index's keys, a delete when it takes them away (sized by
  the old entry), both when it changes a key's value, an update when only projected
  attributes change, and nothing when the item is in the index neither before nor after
  or nothing projected changed (developer guide, "Provisioned throughput considerations
  for Global Secondary Indexes").

Items are in the low-level client's form: `{"PK": {"S": "CUST#1"}, "n": {"N": "12"}}`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

KB = 1024
WRITE_UNIT_BYTES = KB
READ_UNIT_BYTES = 4 * KB
LIST_MAP_OVERHEAD = 3
ELEMENT_OVERHEAD = 1

AttributeValue = Mapping[str, Any]
Item = Mapping[str, AttributeValue]
Consistency = Literal["eventual", "strong", "transactional"]


def significant_digits(number: str) -> int:
    """Significant digits of a DynamoDB number string, leading and trailing zeros trimmed."""
    try:
        parsed = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"not a DynamoDB number: {number!r}") from None
    if not parsed.is_finite():
        raise ValueError(f"not a DynamoDB number: {number!r}")
    digits = "".join(str(digit) for digit in parsed.as_tuple().digits).strip("0")
    return max(1, len(digits))


def number_size(number: str) -> int:
    return math.ceil(significant_digits(number) / 2) + 1


def value_size(value: AttributeValue) -> int:
    """Size in bytes of one attribute value (without its name)."""
    assert len(value) == 1, f"an attribute value has exactly one type: {value!r}"
    ((kind, data),) = value.items()
    match kind:
        case "S":
            return len(str(data).encode())
        case "N":
            return number_size(str(data))
        case "B":
            return len(_raw_bytes(data))
        case "BOOL" | "NULL":
            return 1
        case "SS":
            return sum(len(str(element).encode()) for element in data)
        case "NS":
            return sum(number_size(str(element)) for element in data)
        case "BS":
            return sum(len(_raw_bytes(element)) for element in data)
        case "L":
            elements: Sequence[AttributeValue] = data
            return LIST_MAP_OVERHEAD + sum(
                value_size(element) + ELEMENT_OVERHEAD for element in elements
            )
        case "M":
            members: Mapping[str, AttributeValue] = data
            return LIST_MAP_OVERHEAD + sum(
                len(name.encode()) + value_size(member) + ELEMENT_OVERHEAD
                for name, member in members.items()
            )
    raise ValueError(f"unknown attribute type {kind!r}")


def _raw_bytes(data: object) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"binary values must be bytes (the client decodes base64): {data!r}")


def item_size(item: Item) -> int:
    """Size in bytes of an item: every attribute's name plus its value."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def started_units(size: int, unit_bytes: int) -> int:
    """Units of `unit_bytes` a size starts; an empty or missing item still costs one."""
    return max(1, math.ceil(size / unit_bytes))


def write_units(size: int, *, transactional: bool = False) -> int:
    """Write request units for writing an item of `size` bytes."""
    return (2 if transactional else 1) * started_units(size, WRITE_UNIT_BYTES)


def read_units(size: int, consistency: Consistency = "strong") -> float:
    """Read request units for reading `size` bytes (one item, or a Query's total)."""
    units = started_units(size, READ_UNIT_BYTES)
    factor = {"eventual": 0.5, "strong": 1.0, "transactional": 2.0}[consistency]
    return units * factor


def query_read_units(item_sizes: Iterable[int], consistency: Consistency = "eventual") -> float:
    """Read units of one Query (one page) reading items of these sizes: DynamoDB sums the
    sizes first and rounds the total up to 4 KB once, not each item (unlike a BatchGetItem,
    charged per key). A Query past 1 MB is several pages, each charged on its own."""
    sizes = list(item_sizes)
    units = 0.0
    page = 0
    for size in sizes:
        if page and page + size > 1024 * KB:  # DynamoDB stops a page at 1 MB read
            units += read_units(page, consistency)
            page = 0
        page += size
    return units + read_units(page, consistency)


@dataclass(frozen=True)
class SecondaryIndex:
    """What a GSI holds of a base item: its keys, the table's keys, projected attributes."""

    name: str
    key_attributes: tuple[str, ...]
    table_key_attributes: tuple[str, ...]
    projection_type: Literal["ALL", "KEYS_ONLY", "INCLUDE"]
    non_key_attributes: tuple[str, ...] = ()

    def indexes(self, item: Item) -> bool:
        """A sparse index holds only items that carry every one of its key attributes."""
        return all(name in item for name in self.key_attributes)

    def projected(self, item: Item) -> dict[str, AttributeValue]:
        if self.projection_type == "ALL":
            return dict(item)
        keep = set(self.key_attributes) | set(self.table_key_attributes)
        if self.projection_type == "INCLUDE":
            keep |= set(self.non_key_attributes)
        return {name: value for name, value in item.items() if name in keep}

    def write_units(self, item: Item) -> int:
        """Standard write units the index spends on this item (0 when it does not hold it)."""
        return write_units(item_size(self.projected(item))) if self.indexes(item) else 0

    def key(self, item: Item) -> dict[str, AttributeValue]:
        return {name: item[name] for name in self.key_attributes}

    def writes(self, before: Item, after: Item) -> list[IndexWrite]:
        """What a write that turns `before` into `after` (an empty mapping: no item) costs
        this index."""
        held_before, held_after = self.indexes(before), self.indexes(after)
        old = self.projected(before) if held_before else {}
        new = self.projected(after) if held_after else {}
        if held_before and held_after:
            if self.key(before) != self.key(after):
                return [_index_write("delete", old), _index_write("put", new)]
            return [_index_write("update", new)] if old != new else []
        if held_before:
            return [_index_write("delete", old)]
        if held_after:
            return [_index_write("put", new)]
        return []


@dataclass(frozen=True)
class IndexWrite:
    kind: Literal["put", "update", "delete"]
    size: int  # of the index entry written (the old one for a delete)
    units: int


def _index_write(kind: Literal["put", "update", "delete"], entry: Item) -> IndexWrite:
    size = item_size(entry)
    return IndexWrite(kind, size, write_units(size))


def secondary_indexes(create_table: Mapping[str, Any]) -> list[SecondaryIndex]:
    """The GSIs of a CreateTable request (as `local.template.Template.tables()` gives it)."""
    table_keys = tuple(key["AttributeName"] for key in create_table["KeySchema"])
    indexes = []
    for gsi in create_table.get("GlobalSecondaryIndexes", []):
        projection = gsi.get("Projection", {})
        indexes.append(
            SecondaryIndex(
                name=gsi["IndexName"],
                key_attributes=tuple(key["AttributeName"] for key in gsi["KeySchema"]),
                table_key_attributes=table_keys,
                projection_type=projection.get("ProjectionType", "ALL"),
                non_key_attributes=tuple(projection.get("NonKeyAttributes", ())),
            )
        )
    return indexes


def index_write_units(indexes: Iterable[SecondaryIndex], item: Item) -> int:
    return sum(index.write_units(item) for index in indexes)
