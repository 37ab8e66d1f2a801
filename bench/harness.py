"""The in-process sections' world: DynamoDB Local, the environment pointing boto3 at it, the
built debit handler imported from the built function dir and (host) layer, and helpers.

Powertools' Logger binds to sys.stdout when it is created and Metrics prints its EMF blob
to sys.stdout on every invocation, as on Lambda; the harness sends stdout to /dev/null for
the whole in-process part (the handler still pays for writing it) so the results table
stays readable. Progress goes to stderr.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import os
import random
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.build import built_function_dir
from local import dynamodb_local
from local.template import ROOT, load_template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from token_billing.store.ledger import Ledger

DEBIT_FUNCTION = "DebitFunction"
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
Payload = dict[str, Any]

# A typical agent batch: one VM, three actions (5 + 1.7 + 1 tokens = 7,700 mt).
THREE_LINES: list[dict[str, Any]] = [
    {"action": "vm_runtime", "quantity": 5, "vm_id": "vm-42"},
    {"action": "api_call", "quantity": 17, "vm_id": "vm-42"},
    {"action": "screenshot", "quantity": 2, "vm_id": "vm-42"},
]
OCCURRED_AT = "2026-11-25T11:05:00Z"
ACTIONS = ("vm_runtime", "screenshot", "api_call", "ai_message", "file_upload")


def thousand_lines(seed: int = 1_000) -> list[dict[str, Any]]:
    """1,000 lines from 40 VMs: actions and quantities drawn from a fixed seed, so they
    compress like real meter readings (a repeating pattern would flatter zlib)."""
    draw = random.Random(seed)

    def quantity(action: str) -> float | int:
        if action == "vm_runtime":
            return round(draw.uniform(0.5, 60), 2)
        if action == "file_upload":
            return round(draw.uniform(0.01, 50), 3)
        return draw.randint(1, 200)

    lines = []
    for _ in range(1_000):
        action = draw.choice(ACTIONS)
        lines.append(
            {
                "action": action,
                "quantity": quantity(action),
                "vm_id": f"vm-{draw.randrange(40):03d}",
            }
        )
    return lines


class FakeLambdaContext:
    function_name = DEBIT_FUNCTION
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{DEBIT_FUNCTION}"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = f"/aws/lambda/{DEBIT_FUNCTION}"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@dataclass
class Harness:
    endpoint: str
    table: str
    handler: Handler
    runtime_client: DynamoDBClient  # the client the handler's ledger sends through
    handler_ledger: Ledger  # the handler's own (process-wide) ledger
    check_ledger: Ledger  # a ledger on its own client: funding and invariant checks
    bare_client: DynamoDBClient  # floors are sent from here
    run_id: str
    layer_dir: Path

    def function_handler(self, logical_id: str) -> Handler:
        """Another function's handler from the build, imported in this process beside the
        debit's: it shares the process-wide DynamoDB client (`runtime_client`)."""
        spec = load_template().functions()[logical_id]
        return _import_handler(
            built_function_dir(logical_id), self.layer_dir, spec.module_name, spec.function_name
        )

    def customer(self, label: str) -> str:
        return f"b{self.run_id}-{label}"

    def debit_payload(self, customer_id: str, key: str, usage: list[dict[str, Any]]) -> Payload:
        return {
            "customer_id": customer_id,
            "idempotency_key": key,
            "usage": usage,
            "occurred_at": OCCURRED_AT,
        }

    def fund(self, customer_id: str, amount_mt: int, key: str = "fund") -> None:
        self.check_ledger.grant(
            customer_id=customer_id,
            idempotency_key=key,
            amount_mt=amount_mt,
            reason="bench funding",
            granted_by="bench",
        )

    def invariant_holds(self, customer_id: str) -> bool:
        """balance = sum(entries) and available = balance - held."""
        account = self.check_ledger.get_account(customer_id)
        if account is None:
            return False
        return (
            account.balance_mt == self.check_ledger.sum_entries_mt(customer_id)
            and account.available_mt == account.balance_mt - account.held_mt
        )

    def price_mt(self, usage: list[dict[str, Any]]) -> int:
        from token_billing.domain.usage import price_usage

        return sum(line.cost_mt for line in price_usage(usage))


@contextlib.contextmanager
def patched(target: object, name: str, replacement: object) -> Iterator[None]:
    """Set an attribute on one instance (a client or a ledger) for the block's duration."""
    had_own = name in vars(target)
    saved = vars(target).get(name)
    setattr(target, name, replacement)
    try:
        yield
    finally:
        if had_own:
            setattr(target, name, saved)
        else:
            delattr(target, name)


def capture_transaction(harness: Harness, payload: Payload) -> dict[str, Any]:
    """Invoke the handler once and return (a deep copy of) the TransactWriteItems it sent."""
    captured: list[dict[str, Any]] = []
    original = harness.runtime_client.transact_write_items

    def recording(**kwargs: Any) -> Any:
        captured.append(copy.deepcopy(kwargs))
        return original(**kwargs)

    with patched(harness.runtime_client, "transact_write_items", recording):
        reply = harness.handler(payload, FakeLambdaContext())
    assert reply.get("ok"), reply
    assert len(captured) == 1, f"a debit sends one TransactWriteItems, saw {len(captured)}"
    return captured[0]


def replay_with_fresh_keys(
    request: Mapping[str, Any], customer_id: str, key: str
) -> dict[str, Any]:
    """The captured request with the entry at a new key of the same length: same items, same
    expressions, same sizes, so it succeeds again without colliding with the first entry."""
    from token_billing.store.table_layout import entry_sk, transaction_id

    fresh = dict(request)
    items = []
    for action in request["TransactItems"]:
        put = action.get("Put")
        if put is None or "ledger_sk" not in put["Item"]:
            items.append(action)
            continue
        item = dict(put["Item"])
        txn_id = transaction_id(customer_id, "bench-floor", key)
        created_at = item["ledger_sk"]["S"].split("#", 1)[0]
        item["SK"] = {"S": entry_sk(txn_id)}
        item["txn_id"] = {"S": txn_id}
        item["ledger_sk"] = {"S": f"{created_at}#{txn_id}"}
        items.append({"Put": {**put, "Item": item}})
    fresh["TransactItems"] = items
    return fresh


# The DynamoDB client methods the service's code calls (what a capture records).
CLIENT_METHODS = ("get_item", "query", "transact_write_items", "update_item", "put_item")
Request = tuple[str, dict[str, Any]]  # (client method, its keyword arguments)


def capture_requests(harness: Harness, call: Callable[[], Any]) -> tuple[Any, list[Request]]:
    """Run `call` with the handler's client wrapped on its instance; its result and (deep
    copies of) every request it sent, in order."""
    captured: list[Request] = []
    client = harness.runtime_client

    def recording(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(**kwargs: Any) -> Any:
            captured.append((name, copy.deepcopy(kwargs)))
            return method(**kwargs)

        return recorded

    with contextlib.ExitStack() as stack:
        for name in CLIENT_METHODS:
            stack.enter_context(patched(client, name, recording(name, getattr(client, name))))
        result = call()
    return result, captured


def rewrite_strings(value: Any, replacements: Mapping[str, str]) -> Any:
    """A deep copy of a request with every occurrence of each key replaced in string values
    (attribute names, bytes and numbers stay as they are)."""
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, Mapping):
        return {key: rewrite_strings(item, replacements) for key, item in value.items()}
    if isinstance(value, list):
        return [rewrite_strings(item, replacements) for item in value]
    return value


def agent_on_path() -> None:
    """The VM agent's package (agent/token_meter), importable as a VM installs it."""
    agent = str(ROOT / "agent")
    if agent not in sys.path:
        sys.path.append(agent)


def _import_handler(function_dir: Path, layer_dir: Path, module: str, name: str) -> Handler:
    for path in (str(function_dir), str(layer_dir)):
        if path in sys.path:
            sys.path.remove(path)
    sys.path[:0] = [str(layer_dir), str(function_dir)]
    handler: Handler = getattr(importlib.import_module(module), name)
    return handler


@contextlib.contextmanager
def open_harness(layer_dir: Path) -> Iterator[Harness]:
    spec = load_template().functions()[DEBIT_FUNCTION]
    tables = load_template().tables()
    assert "LedgerTable" in tables, "template.yaml defines LedgerTable"
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    saved_env = dict(os.environ)
    saved_dont_write = sys.dont_write_bytecode
    # The handler, the layer (the built one itself on an arm64 host) and the agent's package
    # are imported in this process: it must not write byte code into the build or the repo.
    sys.dont_write_bytecode = True
    with (
        dynamodb_local.running() as instance,
        Path(os.devnull).open("w") as devnull,
        contextlib.redirect_stdout(devnull),
    ):
        dynamodb_local.create_tables(instance.client())
        os.environ.update(spec.environment)
        os.environ.update(dynamodb_local.local_aws_environment(instance.endpoint))
        os.environ["TABLE_NAME"] = "LedgerTable"
        # The in-process sections meter many VMs per customer through one caller, as an
        # agent on a trusted host does: the ledger path is what they measure. Verifying a
        # credential is one HMAC (microseconds) and sends nothing; the cold start section
        # imports the debit function with the template's RequireAgentCredentials=true.
        os.environ["REQUIRE_AGENT_CREDENTIALS"] = "false"
        try:
            handler = _import_handler(
                built_function_dir(DEBIT_FUNCTION),
                layer_dir,
                spec.module_name,
                spec.function_name,
            )
            from token_billing import runtime
            from token_billing.store.ledger import Ledger

            yield Harness(
                endpoint=instance.endpoint,
                table="LedgerTable",
                handler=handler,
                runtime_client=runtime.dynamodb_client(),
                handler_ledger=runtime.default_ledger(),
                check_ledger=Ledger(instance.client(), "LedgerTable"),
                bare_client=instance.client(),
                run_id=uuid.uuid4().hex[:8],
                layer_dir=layer_dir,
            )
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
            sys.dont_write_bytecode = saved_dont_write
