"""Which IAM actions, on which resources, one AWS API call needs: what AWS authorizes a
function's call by (the Service Authorization Reference's "Actions, resources, and
condition keys" page of each service).

An operation this module does not know raises `UnmappedOperation`: a call nothing checked
would pass locally and might fail in AWS, which is what the local check is there to stop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from local.apigw import LOCAL_ACCOUNT_ID
from local.dynamodb_local import LOCAL_REGION

Permission = tuple[str, str]  # (action, resource ARN)


class UnmappedOperation(Exception):
    """An AWS operation whose IAM actions the local check does not know."""


@dataclass(frozen=True)
class ApiCall:
    """One call of a boto3 client, as the check sees it."""

    service: str  # botocore's service name: dynamodb, events, secretsmanager, ...
    operation: str  # PutItem, PutEvents, ...
    params: Mapping[str, Any]  # the call's parameters
    url: str  # where it is sent (the endpoint and the operation's path)


@dataclass(frozen=True)
class LocalWebSocketApi:
    """The template's WebSocket API as the local Management API stands in for it: the
    dev server's URL carries neither the API id nor the stage an ARN names."""

    api_id: str
    stage: str


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:{resource}"


def _table_arn(table: str) -> str:
    if table.startswith("arn:"):
        return table
    return _arn("dynamodb", f"table/{table}")


# ---- DynamoDB ------------------------------------------------------------------------------

# Operations on one table, authorized as the action of the same name on the table (or, with
# IndexName, on the index).
DYNAMODB_TABLE_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "DescribeTable",
        "DescribeTimeToLive",
        "DescribeContinuousBackups",
    }
)
# A transaction is authorized item by item, as the single-item action of each.
TRANSACT_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


def dynamodb_permissions(call: ApiCall) -> list[Permission]:
    params, operation = call.params, call.operation
    if operation in DYNAMODB_TABLE_OPERATIONS:
        resource = _table_arn(params["TableName"])
        if params.get("IndexName"):
            resource += f"/index/{params['IndexName']}"
        return [(f"dynamodb:{operation}", resource)]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        permissions = []
        for item in params["TransactItems"]:
            ((kind, request),) = item.items()
            permissions.append((TRANSACT_ITEM_ACTIONS[kind], _table_arn(request["TableName"])))
        return permissions
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{operation}", _table_arn(table)) for table in params["RequestItems"]]
    if operation == "ExportTableToPointInTime":
        return [("dynamodb:ExportTableToPointInTime", params["TableArn"])]
    if operation == "DescribeExport":
        return [("dynamodb:DescribeExport", params["ExportArn"])]
    raise UnmappedOperation(operation)


# ---- the other services the functions call -------------------------------------------------


def eventbridge_permissions(call: ApiCall) -> list[Permission]:
    if call.operation != "PutEvents":
        raise UnmappedOperation(call.operation)
    permissions = []
    for entry in call.params["Entries"]:
        bus = entry.get("EventBusName") or "default"
        resource = bus if bus.startswith("arn:") else _arn("events", f"event-bus/{bus}")
        permissions.append(("events:PutEvents", resource))
    return permissions


def secrets_manager_permissions(call: ApiCall) -> list[Permission]:
    if call.operation not in ("GetSecretValue", "DescribeSecret"):
        raise UnmappedOperation(call.operation)
    secret = str(call.params["SecretId"])
    resource = secret if secret.startswith("arn:") else _arn("secretsmanager", f"secret:{secret}")
    return [(f"secretsmanager:{call.operation}", resource)]


MANAGEMENT_METHODS = {
    "PostToConnection": "POST",
    "GetConnection": "GET",
    "DeleteConnection": "DELETE",
}


def management_api_permissions(call: ApiCall, websocket: LocalWebSocketApi) -> list[Permission]:
    """execute-api:ManageConnections on `<api>/<stage>/<METHOD>/@connections/<id>`. In AWS
    the endpoint is https://<api>.execute-api.<region>.amazonaws.com/<stage>; the local
    Management API is the dev server's own port, so it stands for the template's API."""
    if call.operation not in MANAGEMENT_METHODS:
        raise UnmappedOperation(call.operation)
    url = urlsplit(call.url)
    api_id, stage = websocket.api_id, websocket.stage
    if ".execute-api." in (url.hostname or ""):
        api_id = (url.hostname or "").split(".", 1)[0]
        stage = unquote(url.path.lstrip("/").split("/", 1)[0])
    method = MANAGEMENT_METHODS[call.operation]
    resource = f"{api_id}/{stage}/{method}/@connections/{call.params['ConnectionId']}"
    return [("execute-api:ManageConnections", _arn("execute-api", resource))]


S3_OBJECT_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
}


def s3_permissions(call: ApiCall) -> list[Permission]:
    bucket = call.params["Bucket"]
    if call.operation in S3_OBJECT_ACTIONS:
        key = call.params["Key"]
        return [(S3_OBJECT_ACTIONS[call.operation], f"arn:aws:s3:::{bucket}/{key}")]
    if call.operation in ("ListObjectsV2", "ListObjects"):
        return [("s3:ListBucket", f"arn:aws:s3:::{bucket}")]
    raise UnmappedOperation(call.operation)


def sts_permissions(call: ApiCall) -> list[Permission]:
    if call.operation == "GetCallerIdentity":
        return []  # needs no permission: AWS answers it for every principal
    raise UnmappedOperation(call.operation)


SERVICES: dict[str, Callable[[ApiCall], list[Permission]]] = {
    "dynamodb": dynamodb_permissions,
    "events": eventbridge_permissions,
    "secretsmanager": secrets_manager_permissions,
    "s3": s3_permissions,
    "sts": sts_permissions,
}


def required_permissions(call: ApiCall, websocket: LocalWebSocketApi) -> list[Permission]:
    """Every (action, resource) AWS checks for `call`; UnmappedOperation for a call this
    module does not know (Athena, Glue, ... are added here when a function calls them)."""
    try:
        if call.service == "apigatewaymanagementapi":
            return management_api_permissions(call, websocket)
        if call.service in SERVICES:
            return SERVICES[call.service](call)
    except UnmappedOperation:
        pass
    raise UnmappedOperation(
        f"{call.service}.{call.operation}: local/iam_actions.py does not know which IAM "
        "actions and resources this call needs, so the local IAM check cannot allow it. "
        "Add it from the service's page of the Service Authorization Reference "
        "(https://docs.aws.amazon.com/service-authorization/latest/reference/)."
    )
