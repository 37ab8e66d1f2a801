"""Section 1, cold start: the time to import each handler module in a fresh interpreter.

Each child is the venv's python in isolated mode (`-I`: no PYTHON* variables, no user site,
no current directory on sys.path) with only the built layer and the built function dir put
ahead of site-packages, where boto3 comes from (Lambda's runtime provides it, the layer does
not), and an environment like Lambda's. It prints the wall time of the import (perf_counter
around it) and its peak RSS. The floor child instead times `import boto3;
boto3.client("dynamodb")`: the least any function that talks to DynamoDB imports.

Byte code, two ways, each against the same floor:
- "as shipped": `sam build` ships no .pyc and /opt and /var/task are read-only on Lambda, so
  every cold start compiles the layer and the handler from source. The stdlib and boto3 are
  byte-compiled (as the runtime's are).
- "precompiled": everything byte-compiled, what a layer that ships .pyc would give.
Byte code lives under a `-X pycache_prefix` in a scratch directory, written once by an
untimed warm-up per target; the timed children run with `-B`, so nothing is ever written
into `.aws-sam/build` (whose size section 5 reports) and runs stay independent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.build import HostLayer, built_function_dir
from bench.report import Row, SectionResult
from bench.stats import fmt_ratio, median, ratio
from local.template import FunctionSpec, load_template

SECTION = "1 cold start"
DEBIT_FUNCTION = "DebitFunction"
TARGET_DEBIT = 1.15
TARGET_OTHER = 1.35
CHILD_TIMEOUT_S = 60.0
TIME_BUDGET_S = 150.0  # the timed rounds stop early (and say so) past this
CLIENT_REMARK_MS = 10.0  # a handler body this slow at import does real work (clients)
MARKER = "BENCH_RESULT "
FLOOR_BODY = """\
import boto3
client_start = time.perf_counter()
boto3.client("dynamodb")
probe_extra = {"client_ms": (time.perf_counter() - client_start) * 1000}"""
PROBE = """\
import sys
import time
sys.path[:0] = {paths!r}
start = time.perf_counter()
{body}
elapsed_ms = (time.perf_counter() - start) * 1000
import json
import resource
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = {{"ms": elapsed_ms, "rss_kb": rss_kb, **globals().get("probe_extra", {{}})}}
print({marker!r} + json.dumps(result))
"""
MODES = {
    "shipped": "layer + handler compiled at import (as shipped: no .pyc)",
    "precompiled": "layer + handler precompiled (.pyc)",
}


@dataclass
class Target:
    key: str
    body: str
    paths: list[str]
    env: dict[str, str]
    prefix: Path
    ms: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)
    error: str | None = None

    def command(self, *, write_bytecode: bool, importtime: bool = False) -> list[str]:
        command = [sys.executable, "-I", "-X", f"pycache_prefix={self.prefix}"]
        if not write_bytecode:
            command.append("-B")
        if importtime:
            command += ["-X", "importtime"]
        code = PROBE.format(paths=self.paths, body=self.body, marker=MARKER)
        return [*command, "-c", code]

    def run(
        self, cwd: Path, *, write_bytecode: bool = False, importtime: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(write_bytecode=write_bytecode, importtime=importtime),
            capture_output=True,
            text=True,
            env=self.env,
            cwd=cwd,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )

    def sample(self, cwd: Path) -> None:
        if self.error:
            return
        done = self.run(cwd)
        result = next((line for line in done.stdout.splitlines() if line.startswith(MARKER)), None)
        if done.returncode != 0 or result is None:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            self.error = f"exit {done.returncode}: {last[:200]}"
            return
        parsed = json.loads(result.removeprefix(MARKER))
        self.ms.append(float(parsed["ms"]))
        self.rss_kb.append(int(parsed["rss_kb"]))
        if "client_ms" in parsed:
            self.client_ms.append(float(parsed["client_ms"]))


def lambda_environment(scratch: Path, spec: FunctionSpec | None) -> dict[str, str]:
    """What Lambda sets (region, credentials from the role) plus the template's variables;
    AWS config files point nowhere, as on Lambda."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "dummy",
        "AWS_SECRET_ACCESS_KEY": "dummy",
        "AWS_CONFIG_FILE": str(scratch / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-aws-credentials"),
    }
    if spec is not None:
        env["AWS_LAMBDA_FUNCTION_NAME"] = spec.logical_id
        env.update(spec.environment)
    return env


def import_profile(stderr: str) -> dict[str, float]:
    """`-X importtime` output as self milliseconds per top-level package (stdlib modules
    named `stdlib:<module>`)."""
    totals: dict[str, float] = defaultdict(float)
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        top = fields[2].strip().split(".")[0]
        group = f"stdlib:{top}" if top in sys.stdlib_module_names else top
        totals[group] += int(fields[0]) / 1000
    return dict(totals)


def top_additions(function: dict[str, float], floor: dict[str, float], count: int) -> str:
    extra = {name: ms - floor.get(name, 0.0) for name, ms in function.items()}
    ranked = sorted(extra.items(), key=lambda item: item[1], reverse=True)[:count]
    return ", ".join(f"{name} +{ms:.1f} ms" for name, ms in ranked if ms >= 0.5)


def _drop_bytecode(prefix: Path, source_dir: Path) -> None:
    shutil.rmtree(prefix / source_dir.resolve().relative_to("/"), ignore_errors=True)


def run(
    layer: HostLayer, scratch: Path, *, runs: int, progress: Callable[[str], None]
) -> SectionResult:
    result = SectionResult()
    functions = load_template().functions()
    prefixes = {mode: scratch / f"pycache-{mode}" for mode in MODES}
    floor = Target(
        "floor", FLOOR_BODY, [], lambda_environment(scratch, None), prefixes["precompiled"]
    )
    targets: dict[tuple[str, str], Target] = {}
    for logical_id, spec in functions.items():
        paths = [str(layer.path), str(built_function_dir(logical_id))]
        for mode, prefix in prefixes.items():
            targets[(logical_id, mode)] = Target(
                f"{logical_id}/{mode}",
                f"__import__({spec.module_name!r})",
                paths,
                lambda_environment(scratch, spec),
                prefix,
            )
    everything = [floor, *targets.values()]

    # Warm-up: one untimed run per target writes the byte code its prefix should hold.
    for target in everything:
        target.run(scratch, write_bytecode=True)
    _drop_bytecode(prefixes["shipped"], layer.path)
    for logical_id in functions:
        _drop_bytecode(prefixes["shipped"], built_function_dir(logical_id))

    # Timed runs, round robin with a rotating start so drift in the machine's load spreads
    # over every target alike.
    deadline = time.monotonic() + TIME_BUDGET_S
    rounds = 0
    for round_index in range(runs):
        shift = round_index % len(everything)
        for target in everything[shift:] + everything[:shift]:
            target.sample(scratch)
        rounds += 1
        progress(f"cold start: round {rounds}/{runs}")
        if time.monotonic() > deadline:
            result.notes.append(
                f"Cold start stopped after {rounds} of {runs} rounds: over its "
                f"{TIME_BUDGET_S:.0f} s budget (a loaded machine); medians are of {rounds}."
            )
            break

    if floor.error or not floor.ms:
        result.rows.append(Row(SECTION, "floor: boto3 + client", "failed", "", "", "", "ERROR"))
        result.notes.append(f"Cold-start floor failed: {floor.error}")
        return result
    floor_ms = median(floor.ms)
    floor_mb = median(floor.rss_kb) / 1024
    floor_text = f"{floor_ms:.0f} ms, RSS {floor_mb:.0f} MB"
    result.rows.append(
        Row(
            SECTION,
            'floor: `import boto3; boto3.client("dynamodb")`',
            floor_text,
            "(the floor)",
            "1.00x",
        )
    )
    floor_profile = import_profile(floor.run(scratch, importtime=True).stderr)
    for (logical_id, mode), target in targets.items():
        spec = functions[logical_id]
        limit = TARGET_DEBIT if logical_id == DEBIT_FUNCTION else TARGET_OTHER
        measure = f"{logical_id}: import {spec.module_name}, {MODES[mode]}"
        if target.error or not target.ms:
            result.rows.append(
                Row(SECTION, measure, "import failed", floor_text, "", f"<= {limit}x", "ERROR")
            )
            result.notes.append(f"{logical_id} ({mode}) could not be imported: {target.error}")
            continue
        ms = median(target.ms)
        mb = median(target.rss_kb) / 1024
        time_ratio = ratio(ms, floor_ms)
        result.rows.append(
            Row(
                SECTION,
                measure,
                f"{ms:.0f} ms, RSS {mb:.0f} MB",
                floor_text,
                f"{fmt_ratio(time_ratio, 3)} (RSS {fmt_ratio(ratio(mb, floor_mb))})",
                f"<= {limit}x",
                "PASS" if time_ratio <= limit else "OVER",
            )
        )
        profile = import_profile(target.run(scratch, importtime=True).stderr)
        additions = top_additions(profile, floor_profile, 6)
        body_remark = ""
        if profile.get(spec.module_name, 0.0) >= CLIENT_REMARK_MS and floor.client_ms:
            body_remark = (
                f" `{spec.module_name}` is the handler module's own body: code run at import, "
                "such as creating a boto3 client, which the floor does outside any import "
                f"({median(floor.client_ms):.0f} ms)."
            )
        result.notes.append(
            f"{logical_id} ({mode}), `-X importtime` self time beyond the floor's (one "
            f"profiled run), largest first: {additions or 'nothing above 0.5 ms'}.{body_remark}"
        )
    result.notes.append(
        f"Cold start: median of {rounds} fresh `python -I` processes per row, interleaved "
        "round robin; RSS is the child's peak (`ru_maxrss`)."
    )
    if layer.is_copy:
        result.notes.append(
            "Cold start and in-process sections import a copy of the built layer in which "
            "only foreign native extensions are swapped for this host's build of the same "
            "version: " + "; ".join(layer.swapped)
        )
    if layer.unresolved:
        result.notes.append(
            "No host build found for: " + "; ".join(layer.unresolved) + " (imports may fail)"
        )
    return result
