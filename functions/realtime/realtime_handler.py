"""realtime: the WebSocket API's routes. `$connect` (after the authorizer allowed it) records
the connection and the customer's watch marker in the customer's partition (the marker is
what the ledger stream reads in batches), `$disconnect` deletes the connection. `$default`
(a client's keep-alive) never reaches a function: API Gateway answers it itself (a MOCK
integration in template.yaml).

The customer comes from the authorizer's context, never from the request.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from token_billing.core.observability import logger, publish_metrics
from token_billing.runtime import dynamodb_client, table_name
from token_billing.store.connections import Connections

dynamodb_client()  # create the DynamoDB client during init, not on the first connect


@publish_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = event.get("requestContext") or {}
    route = request.get("routeKey")
    connection_id = str(request.get("connectionId", ""))
    grant = request.get("authorizer") or {}
    customer_id = grant.get("customer_id")
    if not customer_id or not connection_id:
        # Only reachable when a route was deployed without the authorizer: refuse.
        logger.warning("socket route without an authorizer context", extra={"route": route})
        return {"statusCode": 403}
    connections = Connections(dynamodb_client(), table_name())
    if route == "$connect":
        connections.add(
            customer_id=customer_id,
            connection_id=connection_id,
            subject=str(grant.get("subject", "")),
        )
        logger.info("socket connected", extra={"customer_id": customer_id})
        reply: dict[str, Any] = {"statusCode": 200}
        if grant.get("subprotocol"):
            # A browser closes the socket unless the server echoes a subprotocol it offered.
            reply["headers"] = {"Sec-WebSocket-Protocol": grant["subprotocol"]}
        return reply
    if route == "$disconnect":
        connections.remove(customer_id=customer_id, connection_id=connection_id)
        logger.info("socket disconnected", extra={"customer_id": customer_id})
        return {"statusCode": 200}
    return {"statusCode": 400}
