"""The reconciliation's SQL as Athena gets it: every statement parses as Trino SQL (Athena
engine 3) with only functions Trino knows, and only checked values reach the text. DuckDB
runs the same query bodies in the integration tests; Athena cannot run here."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from token_billing.store.export_queries import (
    QUERIES,
    ExportQuery,
    athena_statement,
    ledger_items_statement,
    query_text,
)

EXPORT_ID = "01795604400000-5f3a9c1e"
SETTLED = "2026-11-25T10:55:00.000000Z"


@pytest.mark.parametrize("query", QUERIES, ids=lambda query: query.name)
def test_every_athena_statement_is_trino_sql_with_known_functions(query: ExportQuery) -> None:
    sql = athena_statement(query, export_id=EXPORT_ID, settled_before=SETTLED)
    tree = sqlglot.parse_one(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(tree, exp.Select)
    assert [f.name for f in tree.find_all(exp.Anonymous)] == []  # no function Trino lacks
    (cte,) = tree.find_all(exp.CTE)
    assert cte.alias == "ledger_items"
    # the injected partition's one equality, as partition projection requires
    assert f"export_id = '{EXPORT_ID}'" in sql
    assert "{" not in sql


@pytest.mark.parametrize(
    "export_id", ["", "01795604400000-5F3A9C1E", "1-2", "01795604400000-5f3a9c1e' OR '1'='1"]
)
def test_only_an_export_id_shaped_like_dynamodbs_reaches_the_sql(export_id: str) -> None:
    with pytest.raises(ValueError, match="export id"):
        ledger_items_statement(export_id)


@pytest.mark.parametrize(
    "moment", ["2026-11-25", "2026-11-25T10:55:00", "2026-11-25T10:55:00Z' --", "yesterday"]
)
def test_only_a_utc_timestamp_reaches_the_sql(moment: str) -> None:
    with pytest.raises(ValueError, match="settled_before"):
        query_text(QUERIES[0], settled_before=moment)
