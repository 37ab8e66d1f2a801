"""Section 1, cold start: the time to import each handler module in a fresh interpreter.

Each child is the venv's python in isolated mode (`-I`: no PYTHON* variables, no user site,
no current directory on sys.path) with only the built layer and the built function dir put
ahead of site-packages, where boto3 comes from (Lambda's runtime provides it, the layer does
not), and an environment like Lambda's. It prints the wall time of the import (perf_counter
around it) and its peak RSS. The floor child instead times `import boto3;
boto3.client("dynamodb")`: the least any function that talks to DynamoDB imports.

Byte code, two ways, each against the same floor:
- "as shipped": the byte code `make sam-build` put in `.aws-sam/build` (compileall,
  unchecked-hash .pyc in each package's `__pycache__`), read where it lies: no
  `-X pycache_prefix`, and `-B` so nothing new is written. The stdlib and boto3 use their
  own installed .pyc, as the runtime's do. Before timing, every module of the imported
  layer and function dirs is checked for a .pyc this interpreter accepts.
- "without byte code": the layer and the handler compiled at import, what a build that
  ships no .pyc costs on Lambda (/opt and /var/task are read-only, so every cold start
  compiles). Children run with `-X pycache_prefix` in a scratch directory, which makes
  Python ignore the in-tree `__pycache__`; an untimed warm-up writes the stdlib's and
  boto3's byte code there, and the layer's and handlers' is deleted. Fewer rounds, no
  target: it shows what the build's compile step buys.
Nothing is ever written into `.aws-sam/build` (whose size section 7 reports).
"""

from __future__ import annotations

import compileall
import importlib.util
import json
import py_compile
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
SHIPPED = "shipped"
SOURCE = "source"
DEBIT_FUNCTION = "DebitFunction"
# Targets. The debit against the floor; every API function against the reference stack of
# the libraries it is built on, measured in the same run (our own code costs at most 10% on
# top of them), and so is the charger (stream stack + stripe); the stream, sweeper and
# reconcile functions, built on no API stack, against the floor as before.
TARGET_DEBIT = 1.15
TARGET_OVER_STACK = 1.10
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
    SHIPPED: "as shipped (the build's .pyc)",
    SOURCE: "without byte code (compiled at import)",
}
SOURCE_RUNS = 5  # rounds that also time the "without byte code" rows
UNCHECKED_HASH_FLAGS = 0b01  # PEP 552: hash-based, source not checked
STACKS_DIR = Path(__file__).parent / "stacks"
# DESIGN's building blocks alone, nothing of ours: what the targets leave for our own code.
REFERENCES = {
    "stack_logger_metrics": "boto3 client + Powertools Logger and Metrics",
    "stack_resolver": "+ Powertools HTTP API resolver, no validation",
    "stack_resolver_pydantic": "+ resolver with pydantic validation (DESIGN's API stack)",
    "stack_tracer": "boto3 client + Logger, Metrics and Powertools Tracer (X-Ray SDK)",
    "stack_api_no_client": "resolver with pydantic validation, Logger, Metrics, no boto3",
    "stack_api_stripe": "DESIGN's API stack + stripe and its client",
    "stack_stream_stripe": "boto3 client + Logger, Metrics, stream batch processor + stripe",
}
API_STACK = "stack_resolver_pydantic"
# Each API function -> the reference of the libraries it is built on: packages serves the
# catalog and creates no AWS client; purchase and webhook also load stripe.
STACK_OF = {
    "PackagesFunction": "stack_api_no_client",
    "BalancesFunction": API_STACK,
    "GrantsFunction": API_STACK,
    "PurchaseFunction": "stack_api_stripe",
    "WebhookFunction": "stack_api_stripe",
    "AutoTopUpFunction": API_STACK,
    "VmLimitsFunction": API_STACK,
    # The charger pays with Stripe: it is held to the stream stack with stripe, as purchase
    # and webhook are to the API stack with stripe.
    "TopUpChargerFunction": "stack_stream_stripe",
}


@dataclass
class Target:
    key: str
    body: str
    paths: list[str]
    env: dict[str, str]
    prefix: Path | None  # None: byte code from the in-tree __pycache__
    ms: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)
    error: str | None = None

    def command(self, *, write_bytecode: bool, importtime: bool = False) -> list[str]:
        command = [sys.executable, "-I"]
        if self.prefix is not None:
            command += ["-X", f"pycache_prefix={self.prefix}"]
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

    def medians(self) -> tuple[float, float, str]:
        """Median import time (ms) and peak RSS (MB) over the timed runs, and both as text."""
        ms = median(self.ms)
        mb = median(self.rss_kb) / 1024
        return ms, mb, f"{ms:.0f} ms, RSS {mb:.0f} MB"

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


def import_profile(stderr: str, *, by_module: bool = False) -> dict[str, float]:
    """`-X importtime` output as self milliseconds per top-level package (stdlib modules
    named `stdlib:<module>`), or per module."""
    totals: dict[str, float] = defaultdict(float)
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        module = fields[2].strip()
        top = module.split(".")[0]
        group = f"stdlib:{top}" if top in sys.stdlib_module_names else top
        totals[module if by_module else group] += int(fields[0]) / 1000
    return dict(totals)


def top_additions(function: dict[str, float], floor: dict[str, float], count: int) -> str:
    extra = {name: ms - floor.get(name, 0.0) for name, ms in function.items()}
    ranked = sorted(extra.items(), key=lambda item: item[1], reverse=True)[:count]
    return ", ".join(f"{name} +{ms:.1f} ms" for name, ms in ranked if ms >= 0.5)


@dataclass(frozen=True)
class Baseline:
    """What a function's import is divided by: the floor, or its stack's reference."""

    name: str
    ms: float | None
    mb: float
    text: str
    limit: float

    @property
    def target_text(self) -> str:
        return f"<= {self.limit}x" + ("" if self.name == "floor" else " ref")


def baseline(
    logical_id: str,
    references: dict[str, Target],
    floor_ms: float,
    floor_mb: float,
    floor_text: str,
) -> Baseline:
    stack = STACK_OF.get(logical_id)
    if stack is None:
        limit = TARGET_DEBIT if logical_id == DEBIT_FUNCTION else TARGET_OTHER
        return Baseline("floor", floor_ms, floor_mb, floor_text, limit)
    reference = references[stack]
    if reference.error or not reference.ms:
        return Baseline(stack, None, 0.0, f"ref `{stack}`: not run", TARGET_OVER_STACK)
    ms, mb, text = reference.medians()
    return Baseline(stack, ms, mb, f"ref `{stack}`: {text}", TARGET_OVER_STACK)


def reference_rows(
    result: SectionResult,
    references: dict[str, Target],
    floor_ms: float,
    floor_text: str,
    targets: dict[tuple[str, str], Target],
) -> None:
    """Rows for DESIGN's building blocks alone, and a note that sets the API functions
    against the smallest handler on DESIGN's API stack."""
    for module, label in REFERENCES.items():
        reference = references[module]
        measure = f"reference: {label}"
        if reference.error or not reference.ms:
            result.rows.append(Row(SECTION, measure, "not run", floor_text, "", "(reference)", ""))
            result.notes.append(f"Reference `{module}` not run: {reference.error}")
            continue
        ms, _, text = reference.medians()
        time_ratio = fmt_ratio(ratio(ms, floor_ms), 3)
        result.rows.append(Row(SECTION, measure, text, floor_text, time_ratio, "(reference)"))
    beyond = []
    for logical_id, module in STACK_OF.items():
        target, reference = targets.get((logical_id, SHIPPED)), references[module]
        if target is None or target.error or not target.ms:
            continue
        if reference.error or not reference.ms:
            continue
        ms, _, _ = target.medians()
        stack_ms, _, _ = reference.medians()
        beyond.append(f"{logical_id} {ms - stack_ms:+.0f} ms over `{module}`")
    result.notes.append(
        "Each API function is held to <= "
        f"{TARGET_OVER_STACK}x of the reference handler of the libraries it is built on "
        "(`bench/stacks/`, no code of ours, timed in the same rounds): our own code may add "
        "at most 10% to them. The reference rows carry no target; their floor ratio shows "
        "what the building blocks cost before any code of ours. Our code's share: "
        + (", ".join(beyond) or "not measured")
        + "."
    )


def reference_dir(scratch: Path) -> Path:
    """The reference handlers, copied out of the tree and byte-compiled like the build."""
    target = scratch / "stacks"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(STACKS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(
        target, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    return target


def reference_available(module: str) -> str | None:
    """Why a reference cannot run here (its library is missing), or None."""
    if module == "stack_tracer" and importlib.util.find_spec("aws_xray_sdk") is None:
        return "aws-xray-sdk is not installed (requirements/dev.txt pins it)"
    return None


def _drop_bytecode(prefix: Path, source_dir: Path) -> None:
    shutil.rmtree(prefix / source_dir.resolve().relative_to("/"), ignore_errors=True)


@dataclass
class Bytecode:
    modules: int = 0
    usable: int = 0  # an unchecked-hash .pyc of this interpreter's magic number
    other: int = 0  # a .pyc, but timestamp-checked or source-checked hash
    missing: list[str] = field(default_factory=list)


def shipped_bytecode(roots: list[Path]) -> Bytecode:
    """Which modules under `roots` have byte code in their `__pycache__` that this
    interpreter loads without reading the source."""
    found = Bytecode()
    for root in roots:
        for source in sorted(root.rglob("*.py")):
            found.modules += 1
            cached = Path(importlib.util.cache_from_source(str(source)))
            try:
                header = cached.read_bytes()[:8]
            except OSError:
                found.missing.append(str(source.relative_to(root)))
                continue
            flags = int.from_bytes(header[4:8], "little")
            if header[:4] == importlib.util.MAGIC_NUMBER and flags == UNCHECKED_HASH_FLAGS:
                found.usable += 1
            else:
                found.other += 1
    return found


def run(
    layer: HostLayer, scratch: Path, *, runs: int, progress: Callable[[str], None]
) -> SectionResult:
    result = SectionResult()
    functions = load_template().functions()
    source_prefix = scratch / "pycache-source"
    floor = Target("floor", FLOOR_BODY, [], lambda_environment(scratch, None), None)
    targets: dict[tuple[str, str], Target] = {}
    for logical_id, spec in functions.items():
        paths = [str(layer.path), str(built_function_dir(logical_id))]
        for mode, prefix in ((SHIPPED, None), (SOURCE, source_prefix)):
            targets[(logical_id, mode)] = Target(
                f"{logical_id}/{mode}",
                f"__import__({spec.module_name!r})",
                paths,
                lambda_environment(scratch, spec),
                prefix,
            )
    stacks = reference_dir(scratch)
    references: dict[str, Target] = {}
    for module in REFERENCES:
        reference = Target(
            f"reference/{module}",
            f"__import__({module!r})",
            [str(layer.path), str(stacks)],
            {**lambda_environment(scratch, None), "AWS_LAMBDA_FUNCTION_NAME": module},
            None,
        )
        reference.error = reference_available(module)
        references[module] = reference
    shipped = [
        floor,
        *(t for (_, mode), t in targets.items() if mode == SHIPPED),
        *references.values(),
    ]
    source = [t for (_, mode), t in targets.items() if mode == SOURCE]

    bytecode = shipped_bytecode([layer.path, *map(built_function_dir, functions)])
    if bytecode.usable < bytecode.modules:
        result.notes.append(
            f"Shipped byte code INCOMPLETE: {bytecode.usable} of {bytecode.modules} modules "
            f"have an unchecked-hash .pyc for this interpreter ({bytecode.other} another "
            f"kind, {len(bytecode.missing)} none, e.g. {', '.join(bytecode.missing[:3])}): "
            "those compile at every import. `make sam-build` runs compileall."
        )

    # Warm-up: one untimed run per target. Shipped children only read (the page cache
    # warms); source children write the stdlib's and boto3's byte code into their prefix,
    # and then the layer's and handlers' is deleted, so they compile at every import.
    for target in shipped:
        target.run(scratch)
    for target in source:
        target.run(scratch, write_bytecode=True)
    _drop_bytecode(source_prefix, layer.path)
    for logical_id in functions:
        _drop_bytecode(source_prefix, built_function_dir(logical_id))

    # Timed runs, round robin with a rotating start so drift in the machine's load spreads
    # over every target alike; the "without byte code" rows join the first rounds only.
    deadline = time.monotonic() + TIME_BUDGET_S
    rounds = 0
    for round_index in range(runs):
        everything = shipped + (source if round_index < SOURCE_RUNS else [])
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
    floor_ms, floor_mb, floor_text = floor.medians()
    result.rows.append(
        Row(
            SECTION,
            'floor: `import boto3; boto3.client("dynamodb")`',
            floor_text,
            "(the floor)",
            "1.00x",
        )
    )
    floor_profiled = floor.run(scratch, importtime=True).stderr
    floor_profile = import_profile(floor_profiled)
    floor_modules = import_profile(floor_profiled, by_module=True)
    order = sorted(targets.items(), key=lambda item: item[0][1] != SHIPPED)  # shipped first
    for (logical_id, mode), target in order:
        spec = functions[logical_id]
        base = baseline(logical_id, references, floor_ms, floor_mb, floor_text)
        target_text = base.target_text if mode == SHIPPED else "(report)"
        measure = f"{logical_id}: import {spec.module_name}, {MODES[mode]}"
        if target.error or not target.ms or base.ms is None:
            why = target.error or f"its reference `{base.name}` did not run"
            result.rows.append(
                Row(SECTION, measure, "import failed", base.text, "", target_text, "ERROR")
            )
            result.notes.append(f"{logical_id} ({mode}) could not be measured: {why}")
            continue
        ms, mb, text = target.medians()
        time_ratio = ratio(ms, base.ms)
        verdict = "" if mode != SHIPPED else "PASS" if time_ratio <= base.limit else "OVER"
        floor_part = "" if base.name == "floor" else f"; {fmt_ratio(ratio(ms, floor_ms), 3)} floor"
        result.rows.append(
            Row(
                SECTION,
                measure,
                text,
                base.text,
                f"{fmt_ratio(time_ratio, 3)} (RSS {fmt_ratio(ratio(mb, base.mb))}{floor_part})",
                target_text,
                verdict,
            )
        )
        if mode != SHIPPED:
            continue
        profiled = target.run(scratch, importtime=True).stderr
        profile = import_profile(profiled)
        # What the function imports beyond the floor's modules (the reference's own profile
        # is not taken: the floor is the common ground of every row).
        additions = top_additions(profile, floor_profile, 6)
        if verdict == "OVER":
            modules = top_additions(import_profile(profiled, by_module=True), floor_modules, 8)
            additions += f"; by module: {modules or 'nothing above 0.5 ms'}"
        body_remark = ""
        if profile.get(spec.module_name, 0.0) >= CLIENT_REMARK_MS and floor.client_ms:
            body_remark = (
                f" `{spec.module_name}` is the handler module's own body: code run at import, "
                "such as creating a boto3 client, which the floor does outside any import "
                f"({median(floor.client_ms):.0f} ms)."
            )
        result.notes.append(
            f"{logical_id} ({verdict}, {fmt_ratio(time_ratio, 3)} vs {base.target_text}), "
            "`-X importtime` self time beyond the floor's (one profiled run, as shipped), "
            f"largest first: {additions or 'nothing above 0.5 ms'}.{body_remark}"
        )
    reference_rows(result, references, floor_ms, floor_text, targets)
    source_rounds = min(rounds, SOURCE_RUNS)
    result.notes.append(
        f"Cold start: median of {rounds} fresh `python -I` processes per row as shipped and "
        f"{source_rounds} without byte code, interleaved round robin; RSS is the child's "
        f"peak (`ru_maxrss`). As shipped, {bytecode.usable} of {bytecode.modules} modules of "
        "the imported layer and function dirs carry an unchecked-hash .pyc this interpreter "
        "loads without reading the source."
    )
    if layer.is_copy:
        result.notes.append(
            "Cold start and in-process sections import a copy of the built layer (its "
            "`__pycache__` kept) in which only foreign native extensions are swapped for "
            "this host's build of the same version: " + "; ".join(layer.swapped)
        )
    if layer.unresolved:
        result.notes.append(
            "No host build found for: " + "; ".join(layer.unresolved) + " (imports may fail)"
        )
    return result
