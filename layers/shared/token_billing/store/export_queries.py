"""The full reconciliation and finance reports as SQL over the table's export to S3.

DynamoDB's `ExportTableToPointInTime` (format DYNAMODB_JSON) writes gzip'd JSON lines
`{"Item": {"PK": {"S": ...}, ...}}` under `<prefix>/AWSDynamoDB/<export id>/data/`, and
consumes no table capacity. The queries in `sql/` read it as one relation, `ledger_export`
(columns `item`, the item's attribute map, and `export_id`); Athena has it as a Glue table
(template.yaml, `LedgerExportTable`), DuckDB as a view over local files
(`tools/export_duckdb.py`). The SQL text is the same for both, in the dialect they share;
the one adaptation is how `ledger_items.sql`, the typed rows every other query reads,
reaches them: Athena gets it as a `WITH` clause in front of each query
(`athena_statement`), DuckDB materialises it once as a table and runs the queries as they
are (`ledger_items_statement`, `query_text`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

LEDGER_ITEMS = "ledger_items"
CHECK = "check"
REPORT = "report"

# The attributes of the export's items the queries read, with their DynamoDB type; the Glue
# table's `item` column (template.yaml) is `export_item_hive_type()` of these. Usage per
# action is a map keyed by the catalog's actions (a test holds the two lists together).
USAGE_ACTIONS = ("vm_runtime", "screenshot", "api_call", "ai_message", "file_upload")
EXPORT_ITEM_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("PK", "S"),
    ("SK", "S"),
    ("balance_mt", "N"),
    ("held_mt", "N"),
    ("available_mt", "N"),
    ("kind", "S"),
    ("amount_mt", "N"),
    ("order_id", "S"),
    ("bonus_mt", "N"),
    ("hold_status", "S"),
    ("status", "S"),
    ("paid_at", "S"),
    ("tokens_mt", "N"),
    ("price_cents", "N"),
    ("currency", "S"),
    ("refunded_cents", "N"),
    ("disputed_cents", "N"),
    ("created_at", "S"),
    ("updated_at", "S"),
    ("closed_at", "S"),
    ("usage_mt_by_action", "M"),
)

# An export id as DynamoDB names it (`01234567890123-a1b2c3d4`), and an ISO 8601 UTC
# timestamp as the ledger writes them: the only values ever put into the SQL text.
EXPORT_ID_PATTERN = re.compile(r"^[0-9]{13,20}-[0-9a-f]{8}\Z")
TIMESTAMP_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z\Z")


@dataclass(frozen=True, slots=True)
class ExportQuery:
    """One query of `sql/`: a check (each row is a difference) or a report."""

    name: str
    purpose: str

    @property
    def text(self) -> str:
        return _sql(self.name)


QUERIES: tuple[ExportQuery, ...] = (
    ExportQuery("check_accounts", CHECK),
    ExportQuery("check_orders", CHECK),
    ExportQuery("report_outstanding", REPORT),
    ExportQuery("report_sales", REPORT),
    ExportQuery("report_usage", REPORT),
)


def _sql(name: str) -> str:
    return resources.files(__package__).joinpath("sql", f"{name}.sql").read_text()


def query_text(query: ExportQuery, *, settled_before: str) -> str:
    """The query's own text, for an export whose writes before `settled_before` are
    settled (see `check_accounts.sql`)."""
    if not TIMESTAMP_PATTERN.match(settled_before):
        raise ValueError(f"settled_before {settled_before!r} is not a UTC ISO timestamp")
    return query.text.replace("{settled_before}", settled_before)


def ledger_items_statement(export_id: str) -> str:
    """`ledger_items.sql` for one export."""
    if not EXPORT_ID_PATTERN.match(export_id):
        raise ValueError(f"{export_id!r} is not a DynamoDB export id")
    return _sql(LEDGER_ITEMS).replace("{export_id}", export_id)


def athena_statement(query: ExportQuery, *, export_id: str, settled_before: str) -> str:
    """The statement Athena runs: `ledger_items` as a WITH clause, then the query."""
    items = _strip_comments(ledger_items_statement(export_id))
    body = query_text(query, settled_before=settled_before)
    return f"WITH {LEDGER_ITEMS} AS (\n{items}\n)\n{body}"


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def export_item_hive_type() -> str:
    """The Glue (Hive) type of the export's `item` column: a struct of the attributes the
    queries read, each a struct of its DynamoDB type (JSON keys are matched lowercase)."""
    fields = []
    for name, kind in EXPORT_ITEM_ATTRIBUTES:
        if kind == "M":
            actions = ",".join(f"{action}:struct<n:string>" for action in USAGE_ACTIONS)
            value = f"struct<m:struct<{actions}>>"
        else:
            value = f"struct<{kind.lower()}:string>"
        fields.append(f"{name.lower()}:{value}")
    return f"struct<{','.join(fields)}>"
