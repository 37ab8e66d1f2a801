"""`token-meter`: the meter for agents written in shell.

    token-meter record ACTION QUANTITY [--vm-id V]   durable in the spool when it returns
    token-meter flush [--timeout S]                  batch the recorded lines and send them
    token-meter status [--json]                      what the spool holds
    token-meter retry-refused [--timeout S]          resend refused batches (after a top-up)

Configuration: TOKEN_METER_CUSTOMER_ID, TOKEN_METER_FUNCTION (DebitFunction),
TOKEN_METER_SPOOL (~/.token-meter/spool.sqlite3), and boto3's own AWS_REGION,
AWS_ENDPOINT_URL_LAMBDA and credentials.

Exit status: 0 done; 1 batches still unsent at the timeout (they stay spooled); 2 bad
usage or configuration; 3 batches kept back as refused, invalid or failed (see status).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__
from .actions import (
    ACTIONS,
    parse_quantity,
    validate_action,
    validate_customer_id,
    validate_vm_id,
)
from .meter import Meter, default_spool_path
from .spool import KEPT, Spool, SpoolStatus

EXIT_OK = 0
EXIT_UNSENT = 1
EXIT_USAGE = 2
EXIT_KEPT_BACK = 3
CLOSE_TIMEOUT_S = 0.5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="token-meter",
        description="Record usage into a crash-safe local spool and send it to the debit "
        "function, exactly once.",
        epilog="Environment: TOKEN_METER_CUSTOMER_ID, TOKEN_METER_FUNCTION (DebitFunction), "
        "TOKEN_METER_SPOOL (~/.token-meter/spool.sqlite3), AWS_REGION, "
        "AWS_ENDPOINT_URL_LAMBDA. Exit status: 0 done, 1 unsent at timeout, 2 usage error, "
        "3 refused/invalid/failed batches kept back.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    record = commands.add_parser(
        "record", help="add one usage line to the spool (durable when the command returns)"
    )
    record.add_argument("action", help=f"one of: {', '.join(ACTIONS)}")
    record.add_argument("quantity", help="a positive decimal number, e.g. 5 or 2.5")
    record.add_argument("--vm-id", default=None)
    flush = commands.add_parser("flush", help="batch the recorded lines and send the spool")
    flush.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    status = commands.add_parser("status", help="counts per state and the kept-back batches")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    retry = commands.add_parser(
        "retry-refused", help="resend refused batches with their keys, e.g. after a top-up"
    )
    retry.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    return parser


def customer_from_env() -> str:
    customer_id = os.environ.get("TOKEN_METER_CUSTOMER_ID", "")
    if not customer_id:
        raise ValueError("TOKEN_METER_CUSTOMER_ID is not set")
    return validate_customer_id(customer_id)


def cmd_record(args: argparse.Namespace) -> int:
    customer_id = customer_from_env()
    action = validate_action(args.action)
    quantity = parse_quantity(args.quantity)
    vm_id = validate_vm_id(args.vm_id)
    spool = Spool(default_spool_path())
    try:
        spool.add_line(customer_id, action, quantity, vm_id)
    finally:
        spool.close()
    return EXIT_OK


def send(timeout_s: float, *, retry_refused: bool) -> int:
    customer_from_env()
    # One cut per call: lines recorded by `record` wait in the spool until here.
    meter = Meter.from_env(flush_interval_s=3600.0)
    try:
        if retry_refused:
            meter.retry_refused()
        drained = meter.flush(timeout_s)
        status = meter.status()
    finally:
        # Briefly: the flush above already waited. Whatever is unsent stays spooled (a
        # send cut short is resent, same key, by the next flush).
        meter.close(timeout_s=CLOSE_TIMEOUT_S)
    print_summary(status)
    if not drained:
        return EXIT_UNSENT
    if any(status.counts.get(state.value, 0) for state in KEPT):
        return EXIT_KEPT_BACK
    return EXIT_OK


def print_summary(status: SpoolStatus) -> None:
    counts = ", ".join(f"{state} {count}" for state, count in status.counts.items())
    print(f"batches: {counts}; lines not yet batched: {status.pending_lines}")


def cmd_status(args: argparse.Namespace) -> int:
    spool = Spool(default_spool_path())
    try:
        status = spool.status()
    finally:
        spool.close()
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
        return EXIT_OK
    print(f"spool: {spool.path}")
    print_summary(status)
    for batch in [*status.refused, *status.invalid, *status.failed]:
        print(
            f"  {batch.state.value:<8} {batch.op:<7} {batch.key}  lines={batch.line_count} "
            f"attempts={batch.attempts}  {batch.last_error or ''}"
        )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="token-meter: %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        if args.command == "record":
            return cmd_record(args)
        if args.command == "flush":
            return send(args.timeout, retry_refused=False)
        if args.command == "retry-refused":
            return send(args.timeout, retry_refused=True)
        return cmd_status(args)
    except ValueError as error:
        print(f"token-meter: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
