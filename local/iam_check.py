"""The local IAM check: every AWS call a template function makes, in `make dev` and in the
integration tests, is held to that function's role in template.yaml, and a call the role
does not allow fails as AWS fails it.

Which function is calling: a context variable set around each invocation (the dev
server's Lambda runtime, and the integration tests' wrapper of every handler). Calls made
outside any function (a test writing its fixtures, DynamoDB Local's stream poller, the
seed script) are not checked: in AWS they are not the function's either.

How: two botocore event handlers on every session (`before-parameter-build` keeps the
call's parameters, `before-call` decides). A refused call never leaves the process; botocore
parses an `AccessDeniedException` shaped as the service sends it and raises it like any
other ClientError:

    User: arn:aws:sts::123456789012:assumed-role/<Role>/<Function> is not authorized to
    perform: dynamodb:PutItem on resource: arn:aws:dynamodb:...:table/LedgerTable because
    no identity-based policy allows the dynamodb:PutItem action

and the dev server's console shows it with the function's name. `LOCAL_IAM_TEMPLATE` points
the check at another template (a test proves it with a copy missing one action).
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore.handlers
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.model import OperationModel
from botocore.parsers import create_parser

from local.apigw import LOCAL_ACCOUNT_ID
from local.dynamodb_local import LOCAL_REGION
from local.iam_actions import ApiCall, LocalWebSocketApi, required_permissions
from local.iam_roles import FunctionRole, function_roles
from local.intrinsics import LOCAL_STREAM_LABEL, local_parameters
from local.template import TEMPLATE_PATH, Template, load_template

IAM_TEMPLATE_ENV = "LOCAL_IAM_TEMPLATE"
# What Lambda's event source mapping reads a DynamoDB stream with, as the function's role.
STREAM_READ_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
)
_PARAMS_KEY = "local_iam_check.params"

# The template function whose code is running in this thread (or task).
_CALLER: contextvars.ContextVar[str | None] = contextvars.ContextVar("iam_caller", default=None)

Handler = Callable[..., Any]


@contextmanager
def acting_as(function: str) -> Iterator[None]:
    """Every AWS call in this block is `function`'s, held to its role."""
    token = _CALLER.set(function)
    try:
        yield
    finally:
        _CALLER.reset(token)


def as_function(function: str, handler: Handler) -> Handler:
    """`handler` running as `function`: its AWS calls are checked against its role."""
    if getattr(handler, "__local_iam_function__", None) == function:
        return handler

    @functools.wraps(handler)
    def checked(*args: Any, **kwargs: Any) -> Any:
        with acting_as(function):
            return handler(*args, **kwargs)

    checked.__local_iam_function__ = function  # type: ignore[attr-defined]
    return checked


def template_path() -> Path:
    """The template the check reads: LOCAL_IAM_TEMPLATE, else the checkout's."""
    return Path(os.environ.get(IAM_TEMPLATE_ENV) or TEMPLATE_PATH)


class IamCheck:
    """The roles of one template, and the decision for one call of one function."""

    def __init__(self, path: Path) -> None:
        self.template_path = path
        self.roles = function_roles(path)
        self.websocket = local_websocket_api(load_template(path))

    def refusal(self, function: str, call: ApiCall) -> str | None:
        """The AccessDenied message for `call`, or None when the role allows all of it."""
        role = self.roles.get(function)
        if role is None:
            raise LookupError(f"{function} is not a function of {self.template_path}")
        for action, resource in required_permissions(call, self.websocket):
            if not role.allows(action, resource):
                return denied_message(role, action, resource)
        return None

    def stream_source_refusal(self, function: str, table: str) -> str | None:
        """Lambda's refusal to create an event source mapping on `table`'s stream for
        `function` (the deploy fails), or None when its role may read the stream."""
        role = self.roles[function]
        table_arn = f"arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:table/{table}"
        stream = f"{table_arn}/stream/{LOCAL_STREAM_LABEL}"
        needed = [(action, stream) for action in STREAM_READ_ACTIONS]
        needed.append(("dynamodb:ListStreams", f"{table_arn}/stream/*"))
        if all(role.allows(action, resource) for action, resource in needed):
            return None
        return (
            f"{function}: Cannot access stream {stream}. Please ensure the role can perform "
            "the GetRecords, GetShardIterator, DescribeStream, and ListStreams Actions on "
            "your stream in IAM."
        )


def denied_message(role: FunctionRole, action: str, resource: str) -> str:
    """AWS's words for an identity policy that does not allow the call."""
    return (
        f"User: {role.session_arn} is not authorized to perform: {action} on resource: "
        f"{resource} because no identity-based policy allows the {action} action"
    )


def local_websocket_api(template: Template) -> LocalWebSocketApi:
    """The template's WebSocket API id and stage as the local loop names them (the id is
    the logical id; the stage is its StageName at the parameters' defaults)."""
    parameters = local_parameters(template)
    for name, resource in template.resources.items():
        if resource.get("Type") == "AWS::ApiGatewayV2::Stage":
            properties = resource["Properties"]
            api = properties["ApiId"].get("Ref", name)
            stage = properties["StageName"]
            if isinstance(stage, dict) and "Ref" in stage:
                stage = parameters[stage["Ref"]]
            return LocalWebSocketApi(api, str(stage))
    return LocalWebSocketApi("none", "none")


# ---- the botocore side ----------------------------------------------------------------------

_lock = threading.Lock()
_check: IamCheck | None = None


def install() -> IamCheck:
    """Check every function's AWS calls from now on (idempotent; the template is read
    once per process). Clients created before this are not checked: call it before the
    functions make theirs (the dev server and the test session do, first thing)."""
    global _check
    with _lock:
        if _check is None:
            _check = IamCheck(template_path())
            for spec in (
                ("before-parameter-build", _keep_params),
                ("before-call", _check_call),
            ):
                if spec not in botocore.handlers.BUILTIN_HANDLERS:
                    botocore.handlers.BUILTIN_HANDLERS.append(spec)
            # The default session was made before: the next one registers the handlers.
            boto3.setup_default_session()
            _carry_caller_into_thread_pools()
        return _check


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[_PARAMS_KEY] = params


def _check_call(
    model: OperationModel, params: dict[str, Any], context: dict[str, Any], **_: Any
) -> tuple[AWSResponse, dict[str, Any]] | None:
    function = _CALLER.get()
    if function is None or _check is None:
        return None
    call = ApiCall(
        model.service_model.service_name,
        model.name,
        context.get(_PARAMS_KEY, {}),
        str(params.get("url", "")),
    )
    message = _check.refusal(function, call)
    if message is None:
        return None
    print(f"IAM (local check): {function}: AccessDeniedException: {message}", file=sys.stderr)
    return access_denied(model, message, call.url)


class _Body:
    def __init__(self, content: bytes) -> None:
        self.content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.content


def access_denied(
    model: OperationModel, message: str, url: str
) -> tuple[AWSResponse, dict[str, Any]]:
    """The service's own AccessDenied reply, parsed by botocore as if it came over the wire."""
    protocol = model.service_model.resolved_protocol
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id}
    if protocol == "json":
        status, code = 400, "com.amazon.coral.service#AccessDeniedException"
        headers["Content-Type"] = "application/x-amz-json-1.0"
        body = json.dumps({"__type": code, "Message": message}).encode()
    elif protocol == "rest-json":
        status = 403
        headers.update({"x-amzn-ErrorType": "AccessDeniedException"})
        body = json.dumps({"message": message}).encode()
    elif protocol in ("rest-xml", "query"):
        status = 403
        error = f"<Code>AccessDenied</Code><Message>{message}</Message>"
        body = f"<Error>{error}<RequestId>{request_id}</RequestId></Error>".encode()
        if protocol == "query":
            body = f"<ErrorResponse><Error>{error}</Error></ErrorResponse>".encode()
    else:
        raise NotImplementedError(f"AccessDenied for the {protocol} protocol")
    # Case-insensitive, as a real response's headers are.
    wire_headers: Any = HeadersDict(headers)
    response = {"status_code": status, "headers": wire_headers, "body": body}
    output_shape: Any = model.output_shape  # unused for an error, and None for some calls
    parsed: dict[str, Any] = create_parser(protocol).parse(response, output_shape)
    return AWSResponse(url, status, wire_headers, _Body(body)), parsed


def _carry_caller_into_thread_pools() -> None:
    """A function's own thread pool (the balances function reads in four threads) runs its
    work as that function: in AWS the whole process is the function. Only work submitted
    while a function runs carries it; everything else is submitted unchanged."""
    submit = ThreadPoolExecutor.submit

    def submit_as_caller(
        self: ThreadPoolExecutor, fn: Handler, /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        if _CALLER.get() is None:
            return submit(self, fn, *args, **kwargs)
        return submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

    ThreadPoolExecutor.submit = submit_as_caller  # type: ignore[method-assign,assignment]
