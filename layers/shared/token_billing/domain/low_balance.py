"""`TokenBalanceLow` on EventBridge, once per crossing of the low-balance line.

The stream may deliver a crossing's record more than once (a retried batch), so the event is
guarded by a marker keyed by the account version that crossed (`store.alert_markers`): read
the marker, put the event only if it is absent, then write it (conditional Put). The order
is put-then-mark because EventBridge and DynamoDB share no transaction: a crash between the
two can only put the event a second time on the retry, never lose it. Every event carries
`id = "<customer>:<version>"`, the same on a duplicate, so a consumer that must act once
drops an id it has seen. A top-up above the line and a new crossing is a new version, so it
alerts again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from token_billing.core.clock import utc_now_iso
from token_billing.domain.account_changes import (
    EVENT_SOURCE,
    LOW_BALANCE_DETAIL_TYPE,
    LowBalanceCrossing,
)
from token_billing.integrations.eventbridge import (
    EventsClient,
    event_bus_name,
    events_client,
    put_event,
)
from token_billing.store.alert_markers import LowBalanceMarkers

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class LowBalanceAlerts:
    """Puts `TokenBalanceLow` once per crossing, guarded by a marker item in the table."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        events: Callable[[], EventsClient] = events_client,
        bus_name: Callable[[], str] = event_bus_name,
        clock: Callable[[], str] = utc_now_iso,
    ) -> None:
        self._markers = LowBalanceMarkers(client, table_name)
        self._events = events
        self._bus_name = bus_name
        self._clock = clock

    def notify(self, crossing: LowBalanceCrossing) -> bool:
        """Put the crossing's event unless its marker says it was put: True when put now.

        Costs per crossing: 1 GetItem (1 RCU, strongly consistent), 1 PutEvents entry and
        1 PutItem of the marker (1 WCU); a redelivery costs the GetItem only.
        """
        if self._markers.sent(crossing.customer_id, crossing.version):
            return False
        eventbridge_id = put_event(
            self._events(),
            bus_name=self._bus_name(),
            source=EVENT_SOURCE,
            detail_type=LOW_BALANCE_DETAIL_TYPE,
            detail=crossing.detail(),
            event_id=crossing.event_id,
        )
        # False here means another delivery of the same record marked it between our read
        # and write: the event went out twice, with the same id, which consumers drop.
        self._markers.mark_sent(
            customer_id=crossing.customer_id,
            version=crossing.version,
            event_id=crossing.event_id,
            eventbridge_id=eventbridge_id,
            balance_mt=crossing.balance_mt,
            crossed_at=crossing.crossed_at,
            sent_at=self._clock(),
        )
        return True
