"""The dev server's Lambda runtime: which functions may run at the same time. Each runs one
event at a time, as one execution environment; the HTTP API's functions also take turns
with each other, since Powertools' resolver keeps the request on a class that all its apps
in one process share (`BaseRouter.current_event`)."""

from __future__ import annotations

import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from local.lambda_runtime import LocalFunction
from local.template import FunctionSpec

HTTP_EVENT: dict[str, dict[str, object]] = {
    "Api": {"Type": "HttpApi", "Properties": {"Path": "/x", "Method": "GET"}}
}
INVOKED_ONLY: dict[str, dict[str, object]] = {}
# How long a handler waits for the other one to start: long enough on a loaded machine,
# and the answer does not depend on it (the other either can start or cannot).
MEETING_S = 1.0


def _function(tmp_path: Path, events: dict[str, dict[str, object]], meeting: str) -> LocalFunction:
    """A function whose handler says whether the other function's handler ran meanwhile."""
    module = f"meeting_{uuid.uuid4().hex[:8]}"
    code = tmp_path / module
    code.mkdir()
    (code / f"{module}.py").write_text(
        textwrap.dedent(
            f"""
            import threading
            import builtins

            def handler(event, context):
                started = getattr(builtins, {meeting!r})
                started[event["me"]].set()
                return started[event["other"]].wait({MEETING_S})
            """
        )
    )
    spec = FunctionSpec(module, code, f"{module}.handler", events=events)
    return LocalFunction(spec, timeout_s=3, memory_mb=128)


def _met(tmp_path: Path, events: dict[str, dict[str, object]]) -> tuple[bool, bool]:
    """Two functions invoked at once: did each see the other start while it ran?"""
    import builtins

    meeting = f"_meeting_{uuid.uuid4().hex[:8]}"
    setattr(builtins, meeting, {"a": threading.Event(), "b": threading.Event()})
    try:
        first, second = _function(tmp_path, events, meeting), _function(tmp_path, events, meeting)
        results: dict[str, bool] = {}
        threads = [
            threading.Thread(
                target=lambda f=f, me=me, other=other: results.__setitem__(
                    me, f.invoke({"me": me, "other": other})
                )
            )
            for f, me, other in ((first, "a", "b"), (second, "b", "a"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results["a"], results["b"]
    finally:
        delattr(builtins, meeting)


@pytest.fixture(autouse=True)
def _keep_sys_path() -> object:
    saved = list(sys.path)
    yield None
    sys.path[:] = saved


def test_two_http_api_functions_never_run_at_once(tmp_path: Path) -> None:
    # The one that ran first waited for the other in vain; the other found it had started.
    assert sorted(_met(tmp_path, HTTP_EVENT)) == [False, True]


def test_two_other_functions_run_at_once_as_two_execution_environments(tmp_path: Path) -> None:
    assert _met(tmp_path, INVOKED_ONLY) == (True, True)
