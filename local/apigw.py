"""API Gateway HTTP API (payload format 2.0) on a laptop: the event a route's function
receives, and how its return value becomes the HTTP response.

Both follow what API Gateway does, not what is convenient, so a handler that works here
works behind the deployed HTTP API; tests build events with `http_api_event` for the same
reason.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_API_ID = "local"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Media types API Gateway passes as text; any other body reaches the function base64-encoded.
_TEXT_MEDIA_TYPES = frozenset({"application/json", "application/javascript", "application/xml"})


@dataclass(frozen=True)
class HttpResponse:
    """What goes back on the wire: status, headers (repeatable, in order) and body."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


JSON_HEADERS = [("Content-Type", "application/json")]


def is_text_content_type(content_type: str | None) -> bool:
    """Whether API Gateway hands a body of this content type to the function as text."""
    if not content_type:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return (
        media_type.startswith("text/")
        or media_type in _TEXT_MEDIA_TYPES
        or media_type.endswith(("+json", "+xml"))
    )


def request_time(epoch_ms: int) -> str:
    """`25/Nov/2026:11:05:21 +0000`, built by hand: strftime's %b follows the locale."""
    moment = time.gmtime(epoch_ms / 1000)
    return (
        f"{moment.tm_mday:02d}/{_MONTHS[moment.tm_mon - 1]}/{moment.tm_year}:"
        f"{moment.tm_hour:02d}:{moment.tm_min:02d}:{moment.tm_sec:02d} +0000"
    )


def http_api_event(
    method: str,
    path: str,
    *,
    route_key: str,
    path_parameters: dict[str, str] | None = None,
    headers: Iterable[tuple[str, str]] = (),
    raw_query_string: str = "",
    body: bytes | None = None,
    source_ip: str = "127.0.0.1",
    protocol: str = "HTTP/1.1",
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway sends for one request.

    `headers` are (name, value) pairs so repeated headers survive; like API Gateway, names
    are lower-cased, repeats joined with commas, and the cookie header becomes `cookies`.
    """
    joined_headers, cookies = _joined_headers(headers)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query_string,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = joined_headers
    query = _joined_query(raw_query_string)
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    event["requestContext"] = _request_context(
        method, path, route_key, joined_headers, source_ip=source_ip, protocol=protocol
    )
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    event["isBase64Encoded"] = False
    if body:
        event.update(_body_fields(body, joined_headers.get("content-type")))
    return event


def _joined_headers(headers: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """The event's headers (lower-cased names, repeats comma-joined) and its cookies."""
    joined_headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies += [part.strip() for part in value.split(";") if part.strip()]
            continue
        joined_headers[key] = f"{joined_headers[key]},{value}" if key in joined_headers else value
    return joined_headers, cookies


def _joined_query(raw_query_string: str) -> dict[str, str]:
    """queryStringParameters: repeated parameters comma-joined, blank values kept."""
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query_string, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    return query


def _request_context(
    method: str,
    path: str,
    route_key: str,
    joined_headers: dict[str, str],
    *,
    source_ip: str,
    protocol: str,
) -> dict[str, Any]:
    """The event's requestContext, stamped now."""
    epoch_ms = time.time_ns() // 1_000_000
    domain_name = joined_headers.get("host", "localhost")
    return {
        "accountId": LOCAL_ACCOUNT_ID,
        "apiId": LOCAL_API_ID,
        "domainName": domain_name,
        "domainPrefix": domain_name.split(".", 1)[0],
        "http": {
            "method": method.upper(),
            "path": path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": joined_headers.get("user-agent", ""),
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": route_key,
        "stage": "$default",
        "time": request_time(epoch_ms),
        "timeEpoch": epoch_ms,
    }


def _body_fields(body: bytes, content_type: str | None) -> dict[str, Any]:
    """`body`, as text when API Gateway passes this content type as text and it decodes,
    else base64 with `isBase64Encoded`."""
    try:
        text = body.decode() if is_text_content_type(content_type) else None
    except UnicodeDecodeError:
        text = None
    if text is None:
        return {"body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}
    return {"body": text}


def http_api_response(result: Any) -> HttpResponse:
    """The HTTP response API Gateway makes of a function's return value (format 2.0).

    A dict with `statusCode` says everything itself; any other JSON value is the body of a
    200 application/json response. Raises TypeError for a value API Gateway would reject.
    """
    if not (isinstance(result, dict) and "statusCode" in result):
        return HttpResponse(
            200, [("Content-Type", "application/json")], json.dumps(result).encode()
        )
    headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or ()]
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise TypeError(f"the response body must be a string, not {type(body).__name__}")
    if body is None:
        payload = b""
    elif result.get("isBase64Encoded"):
        payload = base64.b64decode(body)
    else:
        payload = body.encode()
    return HttpResponse(int(result["statusCode"]), headers, payload)


INTERNAL_SERVER_ERROR = HttpResponse(
    500, [("Content-Type", "application/json")], b'{"message":"Internal Server Error"}'
)
NOT_FOUND = HttpResponse(404, [("Content-Type", "application/json")], b'{"message":"Not Found"}')
