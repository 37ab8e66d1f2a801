"""The API Gateway Management API: sending one frame to one WebSocket connection.

`WEBSOCKET_MANAGEMENT_ENDPOINT` is the stage's https URL (the template sets it; locally the
dev server, which answers `POST /@connections/{id}` the same way), so the unchanged boto3
`apigatewaymanagementapi` client works in both places.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, Protocol, cast

# API Gateway refuses frames over 128 KB; a balance message is ~0.4 KB.
MAX_FRAME_BYTES = 128 * 1024


class ManagementClient(Protocol):
    """The one Management API call used (boto3's `apigatewaymanagementapi` has it)."""

    def post_to_connection(
        self,
        *,
        Data: bytes,  # noqa: N803 - boto3's parameter names
        ConnectionId: str,  # noqa: N803
    ) -> Any: ...


def management_endpoint() -> str:
    endpoint = os.environ.get("WEBSOCKET_MANAGEMENT_ENDPOINT")
    if not endpoint:
        raise RuntimeError(
            "WEBSOCKET_MANAGEMENT_ENDPOINT is not set: the function's template environment sets it"
        )
    return endpoint


@cache
def management_client() -> ManagementClient:
    """Created on the first push, not at init: most stream batches reach nobody watching.

    Short timeouts and one retry: a slow connection must not hold up the stream, and a
    message lost on the way is replaced by the next change (every message is a whole state).
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 2},
        connect_timeout=1,
        read_timeout=2,
        tcp_keepalive=True,
    )
    client = boto3.client(
        "apigatewaymanagementapi", endpoint_url=management_endpoint(), config=config
    )
    return cast(ManagementClient, client)


def post_to_connection(client: ManagementClient, connection_id: str, data: bytes) -> bool:
    """Send one frame; False when the connection is gone (`GoneException`, HTTP 410).

    Other errors propagate: the caller decides whether they matter.
    """
    assert len(data) <= MAX_FRAME_BYTES, len(data)
    try:
        client.post_to_connection(Data=data, ConnectionId=connection_id)
    except Exception as error:
        response = getattr(error, "response", None) or {}
        code = response.get("Error", {}).get("Code")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "GoneException" or status == 410:
            return False
        raise
    return True
