"""The in-process Lambda runtime and the Lambda Invoke API in front of it.

Each template function is imported on its first invocation (a cold start) and called with
the context object Lambda passes; its log records carry its own service name. The Invoke
API (`POST /2015-03-31/functions/{name}/invocations`) answers as the Lambda service does,
errors included, so boto3's Lambda client works unchanged."""

from __future__ import annotations

import importlib
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from local import dynamodb_local
from local.apigw import JSON_HEADERS, LOCAL_ACCOUNT_ID, HttpResponse
from local.iam_check import acting_as, as_function
from local.template import FunctionSpec, Template, load_template

Handler = Callable[[Any, Any], Any]


def ensure_on_path(folder: Path) -> None:
    """Make a code folder importable, as Lambda does for /var/task and /opt/python."""
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


@dataclass
class LambdaContext:
    """The context object the Lambda Python runtime passes to a handler."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    log_group_name: str
    log_stream_name: str
    deadline: float  # time.monotonic() when Lambda would stop the invocation
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_context: None = None
    identity: None = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


# The service of the function this thread is running. A filter rather than Powertools'
# thread-safe keys: `inject_lambda_context(clear_state=True)` clears those on every call.
_INVOKED_SERVICE: ContextVar[str | None] = ContextVar("invoked_service", default=None)
# The metrics of the invocation this thread is running, under its function's service.
_INVOCATION_METRICS: ContextVar[AmazonCloudWatchEMFProvider | None] = ContextVar(
    "invocation_metrics", default=None
)


class _InvokedServiceName(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        service = _INVOKED_SERVICE.get()
        if service is not None:
            record.service = service  # a record attribute overrides the formatter's key
        return True


class _InvocationMetrics:
    """Stands in for the functions' one Metrics provider: each invocation records into a
    provider of its own, under its function's service, as each function's own process does
    in AWS. (The shared one took its service from the environment at import, the last
    function's, and concurrent invocations would flush each other's metrics.)"""

    def __init__(self, shared: Any) -> None:
        self._shared = shared

    def __getattr__(self, name: str) -> Any:
        provider = _INVOCATION_METRICS.get()
        return getattr(self._shared if provider is None else provider, name)


_observability_lock = threading.Lock()
_observability_installed = False
# Powertools' HTTP resolver keeps the request on its base class (`BaseRouter.current_event`),
# so every resolver app of the process shares it: in Lambda one process runs one function,
# one event at a time; here all functions share one process, and two HTTP API functions
# running at once would each read the other's request (seen: a dashboard's vm-limits read
# served with the catalog's event, no claims, 401). They take turns on this lock.
_HTTP_API_RUNNING = threading.Lock()


def _install_per_function_observability() -> None:
    """Once, on the first handler import: importing the functions' observability module
    creates their Logger and Metrics, which read the environment the dev server sets up
    (the metric namespace, ...) before it imports any handler."""
    global _observability_installed
    with _observability_lock:
        if _observability_installed:
            return
        from token_billing.core.observability import logger, metrics

        logging.getLogger(logger.name).addFilter(_InvokedServiceName())
        metrics.provider = _InvocationMetrics(metrics.provider)  # type: ignore[assignment]
        _observability_installed = True


class LocalFunction:
    """One template function, imported on its first invocation as a Lambda cold start does."""

    def __init__(self, spec: FunctionSpec, *, timeout_s: int, memory_mb: int) -> None:
        self.spec = spec
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        region = dynamodb_local.LOCAL_REGION
        self.arn = f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{spec.logical_id}"
        # One "execution environment": its log stream is named once, like Lambda's.
        self.log_stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._handler: Handler | None = None
        self._lock = threading.Lock()
        # Lambda runs one event at a time in an execution environment; its module state
        # assumes as much. The HTTP API's functions share one lock (`_HTTP_API_RUNNING`).
        serves_http_api = any(e.get("Type") == "HttpApi" for e in spec.events.values())
        self._running = _HTTP_API_RUNNING if serves_http_api else threading.Lock()

    def handler(self) -> Handler:
        """The handler function, imported once; concurrent first calls wait for one import."""
        with self._lock:
            if self._handler is None:
                _install_per_function_observability()
                ensure_on_path(self.spec.code_uri)
                module = importlib.import_module(self.spec.module_name)
                source = Path(module.__file__ or "").resolve()
                if not source.is_relative_to(self.spec.code_uri.resolve()):
                    raise ImportError(
                        f"{self.spec.module_name} was imported from {source}, not from "
                        f"{self.spec.code_uri}: handler module names must be unique"
                    )
                self._handler = getattr(module, self.spec.function_name)
            return self._handler

    @property
    def service(self) -> str:
        return self.spec.environment.get("POWERTOOLS_SERVICE_NAME", self.spec.logical_id)

    def invoke(self, event: Any) -> Any:
        """Run the handler on `event`, one at a time as in one execution environment; its
        exceptions propagate to the caller."""
        with self._running:
            return self._run(event)

    def _run(self, event: Any) -> Any:
        """The handler on `event` as this function: its records carry its service, its
        metrics its own service dimension, its AWS calls are held to its IAM role."""
        handler = self.handler()
        # All functions share one process here, and so one Powertools Logger and Metrics.
        service_token = _INVOKED_SERVICE.set(self.service)
        metrics_token = _INVOCATION_METRICS.set(
            AmazonCloudWatchEMFProvider(
                service=self.service,
                namespace=self.spec.environment.get("POWERTOOLS_METRICS_NAMESPACE"),
            )
        )
        started = time.monotonic()
        context = LambdaContext(
            function_name=self.spec.logical_id,
            invoked_function_arn=self.arn,
            memory_limit_in_mb=self.memory_mb,
            log_group_name=f"/aws/lambda/{self.spec.logical_id}",
            log_stream_name=self.log_stream,
            deadline=started + self.timeout_s,
        )
        try:
            with acting_as(self.spec.logical_id):
                return handler(event, context)
        finally:
            _INVOCATION_METRICS.reset(metrics_token)
            _INVOKED_SERVICE.reset(service_token)
            elapsed = time.monotonic() - started
            if elapsed > self.timeout_s:
                print(
                    f"WARNING {self.spec.logical_id} ran {elapsed:.1f} s, past its "
                    f"{self.timeout_s} s timeout: Lambda would have stopped it",
                    file=sys.stderr,
                )


def hold_handlers_to_their_roles(template: Template) -> None:
    """Replace every template function's handler in its module by one that runs as that
    function, for callers that import the handler themselves (the integration tests'
    `import debit_handler`): their AWS calls are held to the role, as in the dev server."""
    for spec in template.functions().values():
        ensure_on_path(spec.code_uri)
        module = importlib.import_module(spec.module_name)
        handler = getattr(module, spec.function_name)
        setattr(module, spec.function_name, as_function(spec.logical_id, handler))


def lambda_error(status: int, error_type: str, message: str) -> HttpResponse:
    """An error of the Lambda service itself, shaped so botocore raises `error_type`."""
    body = json.dumps({"Type": "User", "message": message}).encode()
    return HttpResponse(status, [*JSON_HEADERS, ("x-amzn-ErrorType", error_type)], body)


def function_error(error_type: str, message: str, stack: list[str]) -> HttpResponse:
    """A handler failure as Lambda reports it: status 200, flagged by X-Amz-Function-Error."""
    body = json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": stack})
    headers = [
        *JSON_HEADERS,
        ("X-Amz-Function-Error", "Unhandled"),
        ("X-Amz-Executed-Version", "$LATEST"),
    ]
    return HttpResponse(200, headers, body.encode())


def function_name_of(name: str) -> str:
    """The function named by an Invoke API path: `Name`, `Name:qualifier` or an ARN."""
    if name.startswith("arn:"):
        parts = name.split(":")
        return parts[6] if len(parts) > 6 else ""
    return name.split(":", 1)[0]


def _function_setting(logical_id: str, name: str, default: int) -> int:
    """A function property (Timeout, MemorySize) from its resource, else from Globals."""
    raw = load_template().raw
    global_value = raw.get("Globals", {}).get("Function", {}).get(name, default)
    return int(raw["Resources"][logical_id]["Properties"].get(name, global_value))


def local_functions(template: Template) -> dict[str, LocalFunction]:
    """Every template function by logical id, with its Timeout and MemorySize (Lambda's
    defaults, 3 s and 128 MB, where neither the function nor Globals sets them)."""
    return {
        logical_id: LocalFunction(
            spec,
            timeout_s=_function_setting(logical_id, "Timeout", 3),
            memory_mb=_function_setting(logical_id, "MemorySize", 128),
        )
        for logical_id, spec in template.functions().items()
    }


def serve_invoke(
    functions: Mapping[str, LocalFunction], name: str, invocation_type: str, payload: bytes
) -> HttpResponse:
    """One Lambda Invoke API call, answered the way the Lambda service answers it."""
    function = functions.get(function_name_of(name))
    if function is None:
        return lambda_error(404, "ResourceNotFoundException", f"Function not found: {name}")
    try:
        event = json.loads(payload) if payload.strip() else {}
    except ValueError as error:
        return lambda_error(
            400,
            "InvalidRequestContentException",
            f"Could not parse request body into json: {error}",
        )
    if invocation_type == "DryRun":
        return HttpResponse(204)
    if invocation_type == "Event":
        threading.Thread(target=_invoke_async, args=(function, event), daemon=True).start()
        return HttpResponse(202)
    if invocation_type != "RequestResponse":
        return lambda_error(
            400,
            "InvalidParameterValueException",
            f"Unsupported invocation type: {invocation_type}",
        )
    try:
        result = function.invoke(event)
    except Exception as error:
        traceback.print_exc()
        stack = traceback.format_list(traceback.extract_tb(error.__traceback__))
        return function_error(type(error).__name__, str(error), stack)
    try:
        body = json.dumps(result)
    except (TypeError, ValueError) as error:
        return function_error("Runtime.MarshalError", f"Unable to marshal response: {error}", [])
    headers = [*JSON_HEADERS, ("X-Amz-Executed-Version", "$LATEST")]
    return HttpResponse(200, headers, body.encode())


def _invoke_async(function: LocalFunction, event: Any) -> None:
    """An Event invocation: nobody waits for it, so a failure is only printed."""
    try:
        function.invoke(event)
    except Exception:
        traceback.print_exc()
