"""Daily usage per customer and action: written by the stream function, read by dashboards.

    PK          SK                   item
    CUST#<id>   USAGE#<YYYY-MM-DD>   used_<action>_mt per action, last_version, day, updated_at

The attributes are named like the account's lifetime counters, so `ledger.usage_by_action`
reads an aggregate item as it reads an account item.

Exactly once under redelivery, with one request per change: the delta of a stream record is
applied under `last_version < :version`, where `version` is the account item's version that
the change wrote. DynamoDB delivers the records of one item in order, so a record whose
version is not above the day's `last_version` has been applied already (a retried batch, a
redelivery) and fails the condition instead of counting twice. Versions grow across days,
so the first change of a new day always applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from token_billing.store.codecs import AttributeValue, usage_by_action, usage_counter
from token_billing.store.conditions import condition_failed
from token_billing.store.table_layout import customer_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

USAGE_PREFIX = "USAGE#"
# A day's item is well under 1 KB, so one Query page (1 MB) holds years of days; the bound
# only stops a runaway loop.
MAX_QUERY_PAGES = 20


def usage_sk(day: date) -> str:
    """Sort key of a day's aggregate: ISO dates sort as days do, so a range is one Query."""
    return USAGE_PREFIX + day.isoformat()


class UsageAggregates:
    """The daily usage aggregates of one ledger table."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def apply_delta(
        self,
        *,
        customer_id: str,
        day: date,
        version: int,
        delta_mt: Mapping[str, int],
        updated_at: str,
    ) -> bool:
        """Add one account change's usage to its day: True if applied, False if this
        version (or a later one) was applied before, i.e. the record is a redelivery.

        One UpdateItem: 1 WCU per KB of the item (an aggregate of five actions is ~0.2 KB).
        """
        assert delta_mt, "only a change that moved usage applies"
        assert all(delta_mt.values()), delta_mt
        adds = []
        values: dict[str, AttributeValue] = {
            ":cid": {"S": customer_id},
            ":day": {"S": day.isoformat()},
            ":v": {"N": str(version)},
            ":at": {"S": updated_at},
        }
        for index, (action, mt) in enumerate(sorted(delta_mt.items())):
            adds.append(f"{usage_counter(action)} :d{index}")
            values[f":d{index}"] = {"N": str(mt)}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"PK": {"S": customer_pk(customer_id)}, "SK": {"S": usage_sk(day)}},
                # `day` is a DynamoDB reserved word.
                UpdateExpression=(
                    "SET customer_id = :cid, #day = :day, last_version = :v, updated_at = :at "
                    "ADD " + ", ".join(adds)
                ),
                ConditionExpression="attribute_not_exists(last_version) OR last_version < :v",
                ExpressionAttributeNames={"#day": "day"},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def usage_for_days(
        self, customer_id: str, first_day: date, last_day: date, *, consistent: bool = False
    ) -> dict[str, int]:
        """Milli-tokens per action used from `first_day` to `last_day`, both included.

        One Query over the range of day items (0.5 RCU per 4 KB read, eventually consistent
        by default: a dashboard may lag the stream by a second anyway).
        """
        if first_day > last_day:
            raise ValueError(f"first_day {first_day} is after last_day {last_day}")
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :first AND :last",
            "ExpressionAttributeValues": {
                ":pk": {"S": customer_pk(customer_id)},
                ":first": {"S": usage_sk(first_day)},
                ":last": {"S": usage_sk(last_day)},
            },
            "ConsistentRead": consistent,
        }
        totals: dict[str, int] = {}
        for _ in range(MAX_QUERY_PAGES):
            response = self._client.query(**kwargs)
            for item in response.get("Items", []):
                for action, mt in usage_by_action(item).items():  # type: ignore[arg-type]
                    totals[action] = totals.get(action, 0) + mt
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return totals
            kwargs["ExclusiveStartKey"] = last_key
        raise RuntimeError(f"usage query for {customer_id!r} exceeded {MAX_QUERY_PAGES} pages")
