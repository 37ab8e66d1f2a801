"""The docs' commands run as written against a fresh `make dev`: every fenced block marked
`<!-- make-dev-example -->` in the READMEs, and every `$ ` line of the dev server's banner.

The dev server runs as `make dev` starts it (`python -m local.devserver`, its own DynamoDB
Local, agent credentials required as the template's default), on free ports and a
temporary data folder, so the test passes beside a developer's `make dev`. The docs name the
default ports: the test points them at its server (`http://127.0.0.1:3000` -> its URL,
`local.seed` -> `local.seed --ddb-port <its port>`) and changes nothing else.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from local.template import ROOT

pytestmark = pytest.mark.integration

MARKER = "<!-- make-dev-example -->"
MARKED_BLOCK = re.compile(
    re.escape(MARKER) + r"\n\n?```(?P<language>sh|python)\n(?P<code>.*?)```", re.S
)
ANY_BLOCK = re.compile(r"^```(?P<language>[\w-]*)\n(?P<code>.*?)```", re.S | re.M)
DOCS = ("README.md", "web/README.md", "agent/README.md", "docs/debit-invoke-api.md")
# A block that calls the debit function through the Invoke API: one the docs must mark.
INVOKES_DEBIT = re.compile(r"2015-03-31/functions/|FunctionName=")
DEFAULT_URL = "http://127.0.0.1:3000"
STARTUP_TIMEOUT_S = 90
COMMAND_TIMEOUT_S = 60
OK_REPLY = re.compile(r"""["']ok["']: (true|True)""")


@dataclass(frozen=True)
class RunningDevServer:
    url: str
    ddb_port: int
    banner: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment() -> dict[str, str]:
    """A developer's shell: none of the test session's AWS, Stripe or handler settings
    (they set REQUIRE_AGENT_CREDENTIALS=false, which the dev server must not inherit)."""
    kept = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "JAVA_HOME")
    environment = {name: os.environ[name] for name in kept if name in os.environ}
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


def wait_for_banner(log: Path, url: str, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the dev server exited: {log.read_text()[-3000:]}"
        text = log.read_text()
        if "Ctrl-C stops." in text:
            with urllib.request.urlopen(f"{url}/api/v1/token-packages", timeout=5) as reply:  # noqa: S310
                assert reply.status == 200
            return text
        time.sleep(0.2)
    raise AssertionError(f"the dev server did not start: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def make_dev() -> Iterator[RunningDevServer]:
    port, ddb_port, ws_port = free_port(), free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="docs-examples-") as work:
        log = Path(work) / "devserver.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "local.devserver",
                    *("--port", str(port), "--ddb-port", str(ddb_port)),
                    *("--ws-port", str(ws_port), "--data-dir", str(Path(work) / "dynamodb")),
                ],
                cwd=ROOT,
                env=clean_environment(),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            yield RunningDevServer(url, ddb_port, wait_for_banner(log, url, process))
        finally:
            process.send_signal(signal.SIGTERM)  # stops DynamoDB Local on its way out
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def against(server: RunningDevServer, code: str) -> str:
    """The docs' command for the default ports, pointed at the test's server."""
    code = code.replace(DEFAULT_URL, server.url)
    return code.replace("-m local.seed ", f"-m local.seed --ddb-port {server.ddb_port} ")


def run(language: str, code: str) -> str:
    """Runs one block as a developer would, from the repository root; its output."""
    command = ["bash", "-euo", "pipefail", "-c", code] if language == "sh" else [sys.executable]
    finished = subprocess.run(
        command,
        input=code if language == "python" else None,
        cwd=ROOT,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    assert finished.returncode == 0, f"{code}\n--> exit {finished.returncode}\n{finished.stderr}"
    return finished.stdout


def marked_blocks(document: str) -> list[tuple[str, str]]:
    text = (ROOT / document).read_text()
    return [(found["language"], found["code"]) for found in MARKED_BLOCK.finditer(text)]


def test_every_debit_example_of_the_docs_is_marked_to_run() -> None:
    unmarked = []
    for document in DOCS:
        text = (ROOT / document).read_text()
        for found in ANY_BLOCK.finditer(text):
            marked = text[: found.start()].rstrip().endswith(MARKER)
            if INVOKES_DEBIT.search(found["code"]) and not marked:
                unmarked.append(f"{document}: {found['code'][:60]!r}")
    assert unmarked == []
    assert sum(len(marked_blocks(document)) for document in DOCS) >= 4


@pytest.mark.parametrize("document", ["README.md", "web/README.md"])
def test_the_marked_examples_run_as_written(make_dev: RunningDevServer, document: str) -> None:
    blocks = marked_blocks(document)
    assert blocks, f"{document} has no {MARKER} block"
    for language, code in blocks:
        output = run(language, against(make_dev, code))
        assert "error" not in output, f"{code}\n--> {output}"
        if INVOKES_DEBIT.search(code):
            assert OK_REPLY.search(output), f"{code}\n--> {output}"


def test_the_banners_commands_run_as_written(make_dev: RunningDevServer) -> None:
    commands = [
        line.strip().removeprefix("$ ")
        for line in make_dev.banner.splitlines()
        if line.strip().startswith("$ ")
    ]
    seed = [command for command in commands if "local.seed" in command]
    debits = [command for command in commands if INVOKES_DEBIT.search(command)]
    assert len(seed) == 1, make_dev.banner
    assert len(debits) == 1, make_dev.banner
    assert f"{make_dev.url}/_local/agent-credential" in make_dev.banner
    run("sh", seed[0])  # the banner names its own ports: nothing to point elsewhere
    reply = json.loads(run("sh", debits[0]))
    assert reply["ok"] is True, reply


def test_without_a_credential_the_debit_is_refused(make_dev: RunningDevServer) -> None:
    # What the docs' examples did before they carried one: the server requires it.
    payload = {
        "customer_id": "cust_demo",
        "idempotency_key": "no-credential",
        "usage": [{"action": "api_call", "quantity": 1}],
    }
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{make_dev.url}/2015-03-31/functions/DebitFunction/invocations",
        data=json.dumps(payload).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
        answer = json.loads(reply.read())
    assert answer["ok"] is False
    assert answer["error"]["code"] == "credential_invalid"
