"""The full reconciliation and the finance reports on one machine: DuckDB over a ledger
export in DynamoDB's own format (gzip'd JSON lines under `AWSDynamoDB/<id>/data/`), with
the same SQL Athena runs in AWS (`token_billing.store.export_queries`).

DuckDB reads the files with its JSON reader; `ledger_export` is a view of them with the
columns Athena's Glue table has (`item`, `export_id`), and `ledger_items` is materialised
once so each query reads typed columns instead of parsing the JSON again. `integer_division`
makes `/` on integers truncate, as in Athena (DuckDB's default is a float). Dev-only: the
Lambda layer never ships duckdb.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from token_billing.store.export_queries import (
    EXPORT_ITEM_ATTRIBUTES,
    LEDGER_ITEMS,
    USAGE_ACTIONS,
    ExportQuery,
    ledger_items_statement,
    query_text,
)

EXPORT_FOLDER = "AWSDynamoDB"


@dataclass(frozen=True, slots=True)
class LocalExport:
    """One export on disk: `<root>/AWSDynamoDB/<export_id>/` with its data files."""

    root: Path
    export_id: str
    export_time: str  # ISO 8601 UTC, from manifest-summary.json
    item_count: int

    @property
    def data_glob(self) -> str:
        return str(self.root / EXPORT_FOLDER / self.export_id / "data" / "*.json.gz")


def find_export(root: Path, export_id: str | None = None) -> LocalExport:
    """The export under `root` (the newest by its export time, unless one is named)."""
    summaries = sorted((root / EXPORT_FOLDER).glob("*/manifest-summary.json"))
    exports = []
    for path in summaries:
        summary = json.loads(path.read_text())
        exports.append(
            LocalExport(root, path.parent.name, summary["exportTime"], summary["itemCount"])
        )
    if export_id:
        exports = [export for export in exports if export.export_id == export_id]
    if not exports:
        raise FileNotFoundError(f"no export {export_id or ''} under {root / EXPORT_FOLDER}")
    return max(exports, key=lambda export: export.export_time)


def duckdb_item_type() -> str:
    """The DuckDB type of a line's `Item`, the same attributes the Glue table declares."""
    fields = []
    for name, kind in EXPORT_ITEM_ATTRIBUTES:
        if kind == "M":
            actions = ", ".join(f"{action} STRUCT(N VARCHAR)" for action in USAGE_ACTIONS)
            fields.append(f'"{name}" STRUCT(M STRUCT({actions}))')
        else:
            fields.append(f'"{name}" STRUCT({kind} VARCHAR)')
    return f"STRUCT({', '.join(fields)})"


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def open_export(
    export: LocalExport, *, memory_limit: str = "4GB", threads: int = 2
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with `ledger_export` over the export's files and `ledger_items`
    materialised (spilling to the export's folder beyond `memory_limit`)."""
    connection = duckdb.connect()
    spill = export.root / ".duckdb-spill"
    spill.mkdir(exist_ok=True)
    connection.execute(f"SET memory_limit = {sql_string(memory_limit)}")
    connection.execute(f"SET threads = {int(threads)}")
    connection.execute(f"SET temp_directory = {sql_string(str(spill))}")
    connection.execute("SET preserve_insertion_order = false")
    connection.execute("SET integer_division = true")  # Athena's (Trino's) integer `/`
    # A view takes no parameters: the values are quoted here, and the export id has been
    # checked against DynamoDB's shape by `ledger_items_statement` below before any use.
    items_sql = ledger_items_statement(export.export_id)
    connection.execute(
        "CREATE VIEW ledger_export AS "  # noqa: S608
        f"SELECT Item AS item, {sql_string(export.export_id)} AS export_id "
        f"FROM read_json({sql_string(export.data_glob)}, format = 'newline_delimited', "
        f"compression = 'gzip', columns = {{'Item': {sql_string(duckdb_item_type())}}})"
    )
    connection.execute(f"CREATE TEMP TABLE {LEDGER_ITEMS} AS {items_sql}")
    return connection


@dataclass(frozen=True, slots=True)
class QueryResult:
    name: str
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def run_query(
    connection: duckdb.DuckDBPyConnection, query: ExportQuery, *, settled_before: str
) -> QueryResult:
    """One query of the folder, exactly as Athena gets its body."""
    relation = connection.execute(query_text(query, settled_before=settled_before))
    columns = [column[0] for column in relation.description or []]
    return QueryResult(query.name, columns, relation.fetchall())
