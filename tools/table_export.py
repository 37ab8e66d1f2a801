"""A ledger export in DynamoDB's own format, from DynamoDB Local: a parallel Scan written as
`ExportTableToPointInTime` writes to S3 in DYNAMODB_JSON (gzip'd JSON lines
`{"Item": {...}}` under `<root>/AWSDynamoDB/<export id>/data/`, `manifest-summary.json` and
`manifest-files.json` beside them), so DuckDB reads it as Athena reads the real one.

    .venv/bin/python -m tools.table_export --out .local/exports   # the dev server's table
"""

from __future__ import annotations

import argparse
import base64
import gzip
import itertools
import json
import secrets
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.dynamodb_local import LOCAL_CREDENTIALS, LOCAL_REGION
from token_billing.store.table_scan import parallel_scan
from tools.export_duckdb import EXPORT_FOLDER, LocalExport

ITEMS_PER_FILE = 100_000


def new_export_id(now: datetime) -> str:
    """An id shaped like DynamoDB's (`<ms since epoch, 14 digits>-<8 hex>`)."""
    return f"{int(now.timestamp() * 1000):014d}-{secrets.token_hex(4)}"


def iso_utc(moment: datetime) -> str:
    """The ledger's timestamp format (microseconds, `Z`)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def export_json_default(value: Any) -> Any:
    """What json.dumps cannot write, as DynamoDB's export writes it: binary as base64, sets
    as lists (json's C encoder walks the rest, far faster than a walk of our own)."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not an attribute value")


def write_data_file(path: Path, items: Iterable[Mapping[str, Any]]) -> int:
    """One gzip'd data file of JSON lines `{"Item": {...}}`; the number of items in it."""
    count = 0
    with gzip.open(path, "wt", compresslevel=6) as handle:
        for item in items:
            line = json.dumps({"Item": item}, separators=(",", ":"), default=export_json_default)
            handle.write(line + "\n")
            count += 1
    return count


def finish_export(
    root: Path, export_id: str, *, export_time: datetime, table_arn: str, item_count: int
) -> LocalExport:
    """Write the manifests of an export whose data files are in place."""
    folder = root / EXPORT_FOLDER / export_id
    data_files = sorted((folder / "data").iterdir())
    stamp = iso_utc(export_time)
    summary = {
        "version": "2020-06-30",
        "exportArn": f"{table_arn}/export/{export_id}",
        "startTime": stamp,
        "endTime": iso_utc(datetime.now(UTC)),
        "tableArn": table_arn,
        "exportTime": stamp,
        "s3Prefix": str(root),
        "manifestFilesS3Key": f"{EXPORT_FOLDER}/{export_id}/manifest-files.json",
        "billedSizeBytes": sum(path.stat().st_size for path in data_files),
        "itemCount": item_count,
        "outputFormat": "DYNAMODB_JSON",
    }
    (folder / "manifest-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (folder / "manifest-files.json").write_text(
        "".join(
            json.dumps({"dataFileS3Key": f"{EXPORT_FOLDER}/{export_id}/data/{path.name}"}) + "\n"
            for path in data_files
        )
    )
    return LocalExport(root, export_id, stamp, item_count)


def data_folder(root: Path, export_id: str) -> Path:
    folder = root / EXPORT_FOLDER / export_id / "data"
    folder.mkdir(parents=True)
    return folder


def write_export(
    root: Path, items: Iterable[Mapping[str, Any]], *, export_time: datetime, table_arn: str
) -> LocalExport:
    """Write items as one export under `root`, ITEMS_PER_FILE to a data file."""
    export_id = new_export_id(export_time)
    data = data_folder(root, export_id)
    count = 0
    iterator = iter(items)
    while True:
        chunk = list(itertools.islice(iterator, ITEMS_PER_FILE))
        if not chunk:
            break
        count += write_data_file(data / f"{count // ITEMS_PER_FILE:05d}.json.gz", chunk)
    if count == 0:
        # An empty table: one empty data file, so the readers' glob matches (DuckDB refuses
        # a pattern that matches nothing) and the checks find nothing to report.
        write_data_file(data / "00000.json.gz", ())
    return finish_export(
        root, export_id, export_time=export_time, table_arn=table_arn, item_count=count
    )


def scan_table(client: Any, table: str) -> Iterator[Mapping[str, Any]]:
    """Every item of the table, from a parallel Scan (whole items, as an export holds)."""
    return parallel_scan(client, {"TableName": table})


def export_local_table(client: Any, table: str, root: Path) -> LocalExport:
    """Export a DynamoDB Local table under `root`; writes before the Scan began are in it."""
    export_time = datetime.now(UTC)
    time.sleep(0.002)  # a write in the same microsecond as export_time would not be settled
    arn = f"arn:aws:dynamodb:{LOCAL_REGION}:000000000000:table/{table}"
    return write_export(root, scan_table(client, table), export_time=export_time, table_arn=arn)


def local_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=LOCAL_REGION,
        aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.table_export", description=__doc__)
    parser.add_argument("--table", default="LedgerTable")
    parser.add_argument("--endpoint", default="http://127.0.0.1:8000", help="DynamoDB Local")
    parser.add_argument("--out", type=Path, default=Path(".local/exports"))
    args = parser.parse_args(argv)
    export = export_local_table(local_client(args.endpoint), args.table, args.out)
    print(f"{export.item_count} items exported to {args.out / EXPORT_FOLDER / export.export_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
