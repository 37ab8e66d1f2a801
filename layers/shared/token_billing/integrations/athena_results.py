"""Athena: the results of a finished query (the state machine starts and waits for them).

`GetQueryRuntimeStatistics` counts the rows a query returned without reading them;
`GetQueryResults` reads them (up to 1,000 a page, the first row being the header) from the
workgroup's output location, which is why the caller may read that S3 prefix too.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3

PAGE_ROWS_MAX = 1_000  # GetQueryResults' own limit


@functools.cache
def athena_client() -> Any:
    """One Athena client per container."""
    return boto3.client("athena")


class AthenaResults:
    """Row counts and rows of finished queries."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def row_count(self, query_execution_id: str) -> int | None:
        """How many rows the query returned (its runtime statistics), or None when Athena
        has no row statistics for it."""
        reply = self._client.get_query_runtime_statistics(QueryExecutionId=query_execution_id)
        rows = reply.get("QueryRuntimeStatistics", {}).get("Rows", {})
        return int(rows["OutputRows"]) if "OutputRows" in rows else None

    def rows(self, query_execution_id: str, *, limit: int) -> list[dict[str, str]]:
        """The first `limit` rows, each as column -> value (NULL as "")."""
        found: list[dict[str, str]] = []
        columns: list[str] | None = None
        kwargs: dict[str, Any] = {"QueryExecutionId": query_execution_id}
        while len(found) < limit:
            kwargs["MaxResults"] = min(PAGE_ROWS_MAX, limit - len(found) + (columns is None))
            reply = self._client.get_query_results(**kwargs)
            for row in reply["ResultSet"]["Rows"]:
                values = [datum.get("VarCharValue", "") for datum in row.get("Data", [])]
                if columns is None:
                    columns = values  # the header row comes first, on the first page only
                    continue
                found.append(dict(zip(columns, values, strict=True)))
            if not reply.get("NextToken"):
                break
            kwargs["NextToken"] = reply["NextToken"]
        return found[:limit]
