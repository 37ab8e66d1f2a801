"""The system under simulation: the real handlers, in-process, against DynamoDB Local through
the fault proxy, with the fake Stripe and a fake EventBridge on a loopback port.

This is the ONE module of the simulation that imports the service's internals (handlers,
`token_billing.*`, `local.*`): when a module moves, the fix is here. Everything else of
`tests/simulation` talks to `System` and reads plain values back.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import secrets
import sys
import threading
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore.endpoint
import time_machine

ROOT = Path(__file__).resolve().parents[2]
# `python -m tests.simulation` runs outside pytest, whose pythonpath names these folders.
for _folder in [ROOT, ROOT / "layers" / "shared", *sorted((ROOT / "functions").iterdir())]:
    if _folder.is_dir() and str(_folder) not in sys.path:
        sys.path.append(str(_folder))

from local import dynamodb_local  # noqa: E402
from local.apigw import http_api_event  # noqa: E402
from local.ddb_streams import lambda_record, local_client_arguments, passes_filters  # noqa: E402
from local.fake_events import FakeEventBridge  # noqa: E402
from local.fake_stripe import FakeStripe  # noqa: E402
from local.identity import authorizer_context  # noqa: E402
from local.stripe_wire import event_payload, sign  # noqa: E402
from local.template import load_template  # noqa: E402
from tests.integration import fault_proxy  # noqa: E402

WEBHOOK_SECRET = "whsec_simulation"
APP = "https://app.example.com"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
# The charger's Stripe client timeout. A `timeout` fault is an answer that never arrives (the
# connection drops after the charge is made), so no request depends on how fast this is.
STRIPE_TIMEOUT_S = 10
WRITE_OPERATIONS = ("TransactWriteItems", "UpdateItem", "PutItem")


class SimulatedCrash(BaseException):
    """The function died between a committed write and its reply (a BaseException, so no
    `except Exception` of the service mistakes it for an error it could handle)."""


def _environment(proxy_endpoint: str, services_url: str, table: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_DYNAMODB": proxy_endpoint,
        "AWS_ENDPOINT_URL_EVENTBRIDGE": services_url,
        "AWS_REGION": dynamodb_local.LOCAL_REGION,
        "AWS_DEFAULT_REGION": dynamodb_local.LOCAL_REGION,
        "AWS_ACCESS_KEY_ID": dynamodb_local.LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": dynamodb_local.LOCAL_CREDENTIALS["aws_secret_access_key"],
        "TABLE_NAME": table,
        "EVENT_BUS_NAME": "TokenBillingEventBus",
        "STAGE": "local",
        "STRIPE_SECRET_KEY": "sk_test_simulation",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": f"{services_url}/_stripe",
        "STRIPE_PRICE_IDS": "",
        # Auto top-up as one off-session PaymentIntent (the modelled path); the invoice
        # path has its own tests (tests/integration/test_auto_top_up_invoices.py).
        "STRIPE_INVOICES": "false",
        "STRIPE_TIMEOUT_S": str(STRIPE_TIMEOUT_S),
        "CHECKOUT_REDIRECT_ORIGINS": APP,
        "CHECKOUT_SUCCESS_URL": f"{APP}/billing/success",
        "CHECKOUT_CANCEL_URL": f"{APP}/billing/cancel",
        "REQUIRE_AGENT_CREDENTIALS": "false",
        "POWERTOOLS_SERVICE_NAME": "simulation",
        "POWERTOOLS_METRICS_NAMESPACE": "TokenBilling",
    }


class _Services(ThreadingHTTPServer):
    """Stripe's API (the fake) and EventBridge's PutEvents on one loopback port."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ServicesHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.stripe = FakeStripe(public_base=self.url)
        self.events = FakeEventBridge(echo=False)


class _ServicesHandler(BaseHTTPRequestHandler):
    server: _Services
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no delayed-ACK stall between headers and body

    def log_message(self, format: str, *args: object) -> None:
        return

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        target = self.headers.get("X-Amz-Target", "")
        path = self.path.removeprefix("/_stripe")
        if target:
            status, payload = self.server.events.handle(target, body)
        else:
            stripe = self.server.stripe
            faults = stripe.faults
            lost = path == "/v1/payment_intents" and bool(faults) and faults[0] == "timeout"
            status, payload = stripe.handle(self.command, path, dict(self.headers), body.decode())
            if lost:
                # Stripe made the charge and kept it under its key; the answer never
                # arrives (no wall-clock timeout: the same on a loaded machine).
                self.close_connection = True
                self.connection.shutdown(2)
                return
        data = json.dumps(payload).encode()
        with contextlib.suppress(OSError):  # a client that timed out has gone
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    do_GET = _serve  # noqa: N815 - http.server's method names
    do_POST = _serve  # noqa: N815


@dataclass
class Stats:
    faults_injected: int = 0
    crashes: int = 0


class _Context:
    function_name = "simulation"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:simulation"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/simulation"
    log_stream_name = "simulation"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


CONTEXT: Any = _Context()


class System:
    """One DynamoDB Local, one fault proxy, one fake Stripe: a history at a time, each on a
    table of its own (created at `open`, deleted at `close`)."""

    def __init__(self, ddb: dynamodb_local.DynamoDBLocal) -> None:
        self.ddb = ddb
        self.client = ddb.client()  # the checks' own reads: never through the proxy
        self._stack = contextlib.ExitStack()
        self.proxy = self._stack.enter_context(fault_proxy.running(ddb.endpoint))
        self.services = _Services()
        self._thread = threading.Thread(target=self.services.serve_forever, daemon=True)
        self._thread.start()
        self._stack.callback(self._stop_services)
        self.stats = Stats()
        self.table = ""
        self._tables = 0
        self._crash_armed: str | None = None
        self._clock: Any = None
        self._streams: Any = None
        self._stream_arn = ""
        self._last_sequence: dict[str, str] = {}
        sources = {s.function: s for s in load_template().stream_sources()}
        self._ledger_filters = sources["LedgerStreamFunction"].filter_patterns
        self._charger_filters = sources["TopUpChargerFunction"].filter_patterns

    def _stop_services(self) -> None:
        self.services.shutdown()
        self.services.server_close()
        self._thread.join(timeout=5)

    def close(self) -> None:
        self._stack.close()

    # ---- a history's world -------------------------------------------------------------

    @contextlib.contextmanager
    def history(self, seed: int) -> Iterator[None]:
        """A fresh table, clock, fake Stripe and seeded ids for one history."""
        self._tables += 1
        suffix = f"_sim{os.getpid()}_{self._tables}"
        self.table = dynamodb_local.create_tables(self.client, suffix=suffix)["LedgerTable"]
        saved = dict(os.environ)
        ids = random.Random(seed * 7919 + 17)
        with contextlib.ExitStack() as stack:
            os.environ.update(_environment(self.proxy.endpoint, self.services.url, self.table))
            stack.callback(_restore_environment, saved)
            self._clock = stack.enter_context(time_machine.travel(START, tick=False))
            # Seeded ids: order ids, Stripe's object ids (secrets.token_hex everywhere).
            stack.enter_context(_patched(secrets, "token_hex", lambda n=16: _hex(ids, n)))
            stack.enter_context(_quiet_service())
            from token_billing.domain.auto_top_up import charge

            # The charger's backoff between Stripe requests: the retries, not the waits.
            stack.enter_context(_patched(charge, "STRIPE_BACKOFF_BASE_S", 0.0))
            self._reset_world()
            stack.callback(self._drop_table)
            yield

    def _reset_world(self) -> None:
        from token_billing import runtime

        runtime.reset()
        events = runtime.dynamodb_client().meta.events
        events.register("after-call.dynamodb", self._after_call)
        # A loaded machine may stall DynamoDB Local past the functions' 5 s read timeout,
        # and botocore's retry of a landed write is a replay no step asked for: lost answers
        # are the proxy's to inject, on purpose.
        events.register("before-call.dynamodb", _patient_reads)
        self.proxy.clear()
        self.services.stripe = FakeStripe(public_base=self.services.url)
        self.services.stripe.timeout_sleep_s = 0.0
        self.services.events = FakeEventBridge(echo=False)
        self._streams = _streams_client(self.ddb.endpoint)
        self._stream_arn = self.client.describe_table(TableName=self.table)["Table"][
            "LatestStreamArn"
        ]
        self._last_sequence = {}

    def _drop_table(self) -> None:
        from token_billing import runtime

        runtime.reset()
        with contextlib.suppress(Exception):
            self.client.delete_table(TableName=self.table)

    # ---- clock and faults ------------------------------------------------------------------

    def advance(self, seconds: int) -> None:
        self._clock.shift(seconds)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def arm(self, operation: str, fault: str, count: int = 1) -> None:
        """A fault for the next `count` requests of `operation` (crash: after the next write)."""
        if fault == "crash":
            self._crash_armed = operation
        else:
            self.proxy.inject(operation, *[fault] * count)

    def disarm(self) -> int:
        """Clear every pending fault; how many were injected since the last call."""
        self.proxy.clear()
        self._crash_armed = None
        with self.proxy.lock:
            injected = sum(self.proxy.injected.values())
            self.proxy.injected.clear()
        self.stats.faults_injected += injected
        return injected

    def _after_call(self, http_response: Any, model: Any, **_: Any) -> None:
        if self._crash_armed == model.name and http_response.status_code == 200:
            self._crash_armed = None
            self.stats.crashes += 1
            raise SimulatedCrash(model.name)

    # ---- the functions -----------------------------------------------------------------

    def invoke_debit(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        import debit_handler

        reply: dict[str, Any] = debit_handler.lambda_handler(dict(payload), CONTEXT)
        return reply

    def sweep(self) -> dict[str, Any]:
        import holds_sweeper_handler

        reply: dict[str, Any] = holds_sweeper_handler.lambda_handler({}, CONTEXT)
        return reply

    def _http(
        self,
        handler: Callable[[dict[str, Any], Any], dict[str, Any]],
        method: str,
        route: str,
        customer_id: str,
        body: object,
        *,
        claims: dict[str, Any],
        headers: tuple[tuple[str, str], ...] = (),
    ) -> tuple[int, dict[str, Any]]:
        path = route.replace("{id}", customer_id)
        event = http_api_event(
            method,
            path,
            route_key=f"{method} {route}",
            path_parameters={"customer_id": customer_id, "id": customer_id},
            headers=(("content-type", "application/json"), *headers),
            body=json.dumps(body).encode() if body is not None else None,
            authorizer=authorizer_context(claims),
        )
        reply = handler(event, CONTEXT)
        return int(reply["statusCode"]), json.loads(reply.get("body") or "{}")

    def grant(self, customer_id: str, key: str, amount: str) -> tuple[int, dict[str, Any]]:
        import grants_handler

        return self._http(
            grants_handler.lambda_handler,
            "POST",
            "/api/v1/customers/{id}/tokens/grants",
            customer_id,
            {"amount": amount, "reason": "simulation"},
            claims={"sub": "support-1", "scope": "admin"},
            headers=(("idempotency-key", key),),
        )

    def purchase(
        self, customer_id: str, package_id: str, key: str, *, save_card: bool
    ) -> tuple[int, dict[str, Any]]:
        import purchase_handler

        body: dict[str, Any] = {"package_id": package_id}
        if save_card:
            body["save_card"] = True
        return self._http(
            purchase_handler.lambda_handler,
            "POST",
            "/api/v1/customers/{id}/tokens/purchase",
            customer_id,
            body,
            claims={"sub": f"user-{customer_id}", "customer_id": customer_id},
            headers=(("idempotency-key", key),),
        )

    def put_auto_top_up(self, customer_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        import auto_top_up_handler

        return self._http(
            auto_top_up_handler.lambda_handler,
            "PUT",
            "/api/v1/customers/{id}/tokens/auto-top-up",
            customer_id,
            body,
            claims={"sub": f"user-{customer_id}", "customer_id": customer_id},
        )

    def webhook(self, event_type: str, obj: Mapping[str, Any], event_id: str) -> tuple[int, Any]:
        """Stripe POSTs a signed event to the webhook function."""
        import webhook_handler

        from tests.stripe_events import webhook_request

        body = event_payload(event_type, dict(obj), event_id=event_id)
        event = webhook_request(body, secret=WEBHOOK_SECRET, signature=sign(body, WEBHOOK_SECRET))
        reply = webhook_handler.lambda_handler(event, CONTEXT)
        return int(reply["statusCode"]), json.loads(reply.get("body") or "{}")

    def ledger_stream(self, records: list[dict[str, Any]]) -> list[str]:
        """One batch to the ledger-stream function; the sequence numbers it failed."""
        import ledger_stream_handler

        reply = ledger_stream_handler.lambda_handler({"Records": records}, CONTEXT)
        return [failure["itemIdentifier"] for failure in reply.get("batchItemFailures", [])]

    def charger(self, records: list[dict[str, Any]]) -> list[str]:
        import top_up_charger_handler

        reply = top_up_charger_handler.lambda_handler({"Records": records}, CONTEXT)
        return [failure["itemIdentifier"] for failure in reply.get("batchItemFailures", [])]

    # ---- the fake Stripe -----------------------------------------------------------------

    @property
    def stripe(self) -> FakeStripe:
        return self.services.stripe

    def stripe_faults(self, faults: list[str]) -> None:
        self.stripe.faults[:] = faults

    def pay_session(self, session_id: str, card: str) -> dict[str, Any]:
        return self.stripe.pay(session_id, card=card)

    def take_stripe_outbox(self) -> list[tuple[str, dict[str, Any]]]:
        """The events the fake Stripe would send now (it sends nothing by itself here)."""
        taken, self.stripe.outbox = self.stripe.outbox, []
        return taken

    def payment_intents(self) -> list[dict[str, Any]]:
        return list(self.stripe.payment_intents.values())

    # ---- the stream ------------------------------------------------------------------------

    def stream_records(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """New records of the table's stream as Lambda shapes them: (for the ledger-stream
        function, for the charger), each after its FilterCriteria."""
        raw: list[dict[str, Any]] = []
        description = self._streams.describe_stream(StreamArn=self._stream_arn)
        for shard in description["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            last = self._last_sequence.get(shard_id)
            position: dict[str, str] = (
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last}
                if last
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            iterator = self._streams.get_shard_iterator(
                StreamArn=self._stream_arn, ShardId=shard_id, **position
            )["ShardIterator"]
            for _ in range(1_000):
                response = self._streams.get_records(ShardIterator=iterator, Limit=1000)
                raw.extend(response["Records"])
                if response["Records"]:
                    self._last_sequence[shard_id] = response["Records"][-1]["dynamodb"][
                        "SequenceNumber"
                    ]
                iterator = response.get("NextShardIterator")
                if not iterator or not response["Records"]:
                    break
        shaped = [lambda_record(r, stream_arn=self._stream_arn, region="us-east-1") for r in raw]
        ledger = [r for r in shaped if passes_filters(self._ledger_filters, r)]
        charger = [r for r in shaped if passes_filters(self._charger_filters, r)]
        return ledger, charger

    @staticmethod
    def record_customer(record: Mapping[str, Any]) -> str:
        return str(record["dynamodb"]["Keys"]["PK"]["S"]).removeprefix("CUST#")

    @staticmethod
    def account_change(record: Mapping[str, Any]) -> dict[str, Any]:
        """What an ACCOUNT record says, as plain values."""
        from token_billing.store.stream_images import account_change

        stream = record["dynamodb"]
        change = account_change(stream.get("OldImage"), stream["NewImage"])
        return {
            "customer_id": change.customer_id,
            "version": change.version,
            "old_available_mt": change.old_available_mt,
            "available_mt": change.available_mt,
            "balance_mt": change.balance_mt,
            "held_mt": change.held_mt,
            "clawback": change.clawed_back_delta_mt > 0,
            "day": change.day.isoformat(),
            "usage": dict(change.usage_delta_mt),
        }

    # ---- the stores' public reads, for the checks (straight to DynamoDB Local) --------------

    def _ledger(self) -> Any:
        from token_billing.store.holds import HoldLedger

        return HoldLedger(self.client, self.table)

    def account(self, customer_id: str) -> dict[str, int] | None:
        account = self._ledger().get_account(customer_id)
        if account is None:
            return None
        return {
            "balance_mt": account.balance_mt,
            "held_mt": account.held_mt,
            "available_mt": account.available_mt,
            "version": account.version,
        }

    def entries(self, customer_id: str) -> list[dict[str, Any]]:
        return [
            {
                "kind": item["kind"]["S"],
                "amount_mt": int(item["amount_mt"]["N"]),
                "order_id": item.get("order_id", {}).get("S"),
            }
            for item in self._ledger().iter_entries(customer_id)
        ]

    def holds(self, customer_id: str) -> dict[str, dict[str, Any]]:
        """Every hold of the customer (active and closed), by id."""
        response = self.client.query(
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": f"CUST#{customer_id}"},
                ":prefix": {"S": "ACCOUNT#HOLD#"},
            },
            ConsistentRead=True,
        )
        from token_billing.store.codecs import hold_from_item

        found = {}
        for item in response.get("Items", []):
            hold = hold_from_item(item)  # type: ignore[arg-type]
            found[hold.hold_id] = {"status": hold.status, "amount_mt": hold.amount_mt}
        assert "LastEvaluatedKey" not in response, "a history keeps well under 1 MB of holds"
        return found

    def orders(self, customer_id: str) -> dict[str, dict[str, Any]]:
        from token_billing.store.orders import OrderStore

        store = OrderStore(self.client, self.table)
        found: dict[str, dict[str, Any]] = {}
        cursor = None
        while True:
            page, cursor = store.list_for_customer(customer_id, limit=100, cursor=cursor)
            for order in page:
                found[order.order_id] = {
                    "status": order.status,
                    "kind": order.kind,
                    "clawed_back_mt": order.clawed_back_mt,
                    "total_mt": order.total_mt,
                    "price_cents": order.price_cents,
                    "session_id": order.session_id,
                }
            if not cursor:
                return found

    def usage(self, customer_id: str, day: date) -> dict[str, int]:
        from token_billing.store.usage_aggregates import UsageAggregates

        return UsageAggregates(self.client, self.table).usage_for_days(
            customer_id, day, day, consistent=True
        )

    def top_up(self, customer_id: str) -> dict[str, Any]:
        from token_billing.store.top_up_store import TopUpStore

        store = TopUpStore(self.client, self.table)
        state = store.get_state(customer_id)
        return {
            "enabled": state.enabled,
            "in_flight": state.in_flight,
            "failures": state.consecutive_failures,
            "paused_reason": state.paused_reason,
            "card": state.card.payment_method_id if state.card else None,
            "counters": dict(state.counters),
            "attempts": {
                a.version: {"status": a.status, "order_id": a.order_id, "credited": a.credited}
                for a in store.recent_attempts(customer_id, limit=100)
            },
        }

    def reconcile(self) -> tuple[int, str]:
        """`make reconcile` against this history's table: (exit code, what it printed)."""
        from tools.reconcile import main

        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = main(["--table", self.table, "--endpoint", self.ddb.endpoint])
        return code, printed.getvalue()

    @staticmethod
    def consent_version() -> str:
        from token_billing.domain.auto_top_up.settings import CONSENT_VERSION

        return CONSENT_VERSION


# ---- planted defects: the behaviour a test breaks on purpose, patched here only ---------------


@contextlib.contextmanager
def planted_defect(name: str) -> Iterator[None]:
    """Break the service in one known way (tests/simulation/test_planted_defects.py)."""
    with contextlib.ExitStack() as stack:
        _PLANTS[name](stack)
        yield


def _replay_debits_again(stack: contextlib.ExitStack) -> None:
    """A replayed debit moves tokens again: the entry's idempotency guard is gone."""
    from token_billing.store import ledger

    original = ledger.Ledger._post

    def post(self: Any, **kwargs: Any) -> Any:
        if kwargs.get("kind") == "usage" and kwargs.get("scope") == "usage":
            kwargs["idempotency_key"] = f"{kwargs['idempotency_key']}#{secrets.token_hex(4)}"
        return original(self, **kwargs)

    stack.enter_context(_patched(ledger.Ledger, "_post", post))


def _settle_keeps_the_rest(stack: contextlib.ExitStack) -> None:
    """A settle that captures but does not release the rest of its hold."""
    from token_billing.store import holds

    original = holds.HoldLedger.capture_hold

    def capture(self: Any, **kwargs: Any) -> Any:
        if kwargs.get("scope") == "settle":
            kwargs["keep_remaining"] = True
        return original(self, **kwargs)

    stack.enter_context(_patched(holds.HoldLedger, "capture_hold", capture))


def _clawback_buys_again(stack: contextlib.ExitStack) -> None:
    """A clawback's crossing admits an auto top-up (the refund -> charge loop): the stream
    function no longer sees that a clawback made the change."""
    import dataclasses

    import ledger_stream_handler

    from token_billing.store.stream_images import account_change

    def change(old: Any, new: Any) -> Any:
        return dataclasses.replace(account_change(old, new), clawed_back_delta_mt=0)

    stack.enter_context(_patched(ledger_stream_handler, "account_change", change))


def _release_forgets_held(stack: contextlib.ExitStack) -> None:
    """A release that frees the hold but leaves the account's held tokens as they were."""
    from token_billing.store import holds

    original = holds.HoldLedger._account_update

    def update(self: Any, customer_id: str, now: str, **kwargs: Any) -> Any:
        if kwargs.get("balance_delta_mt") == 0 and kwargs.get("held_delta_mt", 0) < 0:
            kwargs["held_delta_mt"] = 0
        return original(self, customer_id, now, **kwargs)

    stack.enter_context(_patched(holds.HoldLedger, "_account_update", update))


_PLANTS: dict[str, Callable[[contextlib.ExitStack], None]] = {
    "replay_debits_again": _replay_debits_again,
    "settle_keeps_the_rest": _settle_keeps_the_rest,
    "clawback_buys_again": _clawback_buys_again,
    "release_forgets_held": _release_forgets_held,
}
PLANTED_DEFECTS = tuple(_PLANTS)


# ---- helpers -----------------------------------------------------------------------------------


def _patient_reads(context: dict[str, Any], **_: Any) -> None:
    context["read_timeout"] = 120


def _hex(ids: random.Random, n: int) -> str:
    return ids.getrandbits(8 * n).to_bytes(n, "big").hex()


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    saved = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


@contextlib.contextmanager
def _quiet_service() -> Iterator[None]:
    """No log lines or metrics printed, and botocore's retry backoff without the waiting
    (the behaviour under test is the retry, not the wait)."""
    import logging
    import time

    from token_billing.core.observability import logger, metrics

    level = logger.log_level
    logger.setLevel(logging.CRITICAL)
    fast = types.SimpleNamespace(sleep=lambda _s: None, time=time.time)
    try:
        with (
            _patched(botocore.endpoint, "time", fast),
            _patched(metrics, "flush_metrics", lambda *_a, **_k: metrics.clear_metrics()),
        ):
            yield
    finally:
        logger.setLevel(level)


def _restore_environment(saved: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(saved)


def _streams_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("dynamodbstreams", **local_client_arguments(endpoint))


@contextlib.contextmanager
def running_system() -> Iterator[System]:
    """DynamoDB Local of its own and a System on it, for `make simulate`."""
    with dynamodb_local.running() as ddb:
        system = System(ddb)
        try:
            yield system
        finally:
            system.close()
