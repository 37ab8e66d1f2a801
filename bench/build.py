"""Where `sam build` put the functions and the layer, and a copy of the layer this host can
import.

The layer is built for arm64 (template.yaml: BuildArchitecture). On an x86_64 machine its
native extensions (pydantic-core) cannot load, so the benchmark imports a copy of the built
layer in which each foreign extension is swapped for the host build of the same module from
the same distribution at the same version (the venv pins both from one requirements file).
Every other file is the built one, byte for byte. On an arm64 host nothing is swapped and
the built directory itself is used.
"""

from __future__ import annotations

import importlib.machinery
import shutil
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from local.template import ROOT, load_template

BUILD_DIR = ROOT / ".aws-sam" / "build"
ELF_MAGIC = b"\x7fELF"
ELF_MACHINES = {0x03: "x86", 0x3E: "x86_64", 0x28: "arm", 0xB7: "aarch64"}


class BuildMissing(RuntimeError):
    pass


def layer_logical_id() -> str:
    layers = [
        logical_id
        for logical_id, resource in load_template().resources.items()
        if resource.get("Type") == "AWS::Serverless::LayerVersion"
    ]
    if len(layers) != 1:
        raise BuildMissing(f"expected one layer in template.yaml, found {layers}")
    return layers[0]


def built_layer_dir() -> Path:
    path = BUILD_DIR / layer_logical_id() / "python"
    if not path.is_dir():
        raise BuildMissing(f"{path} is missing: run `sam build` (make bench does)")
    return path


def built_function_dir(logical_id: str) -> Path:
    path = BUILD_DIR / logical_id
    if not path.is_dir():
        raise BuildMissing(f"{path} is missing: run `sam build` (make bench does)")
    return path


def elf_machine(path: Path) -> int | None:
    """The ELF e_machine field of a file, None when it is not ELF."""
    with path.open("rb") as stream:
        header = stream.read(20)
    if len(header) < 20 or not header.startswith(ELF_MAGIC):
        return None
    byteorder: Literal["little", "big"] = "little" if header[5] == 1 else "big"
    return int.from_bytes(header[18:20], byteorder)


def host_machine() -> int:
    machine = elf_machine(Path(sys.executable).resolve())
    assert machine is not None, "the interpreter is an ELF binary on Linux"
    return machine


def machine_name(machine: int | None) -> str:
    return "not ELF" if machine is None else ELF_MACHINES.get(machine, hex(machine))


def _module_parts(path: Path) -> tuple[str, str]:
    """(module name, extension suffix) of an extension file: `_core`, `.cpython-313-...so`."""
    stem, _, rest = path.name.partition(".")
    return stem, "." + rest


def _host_loadable(path: Path, host: int) -> bool:
    _, suffix = _module_parts(path)
    return suffix in importlib.machinery.EXTENSION_SUFFIXES and elf_machine(path) == host


def _distribution_of(layer: Path, relative: Path) -> str | None:
    """The `<name>-<version>.dist-info` whose RECORD lists `relative`."""
    wanted = relative.as_posix()
    for record in layer.glob("*.dist-info/RECORD"):
        for line in record.read_text().splitlines():
            if line.split(",", 1)[0] == wanted:
                return record.parent.name
    return None


@dataclass
class HostLayer:
    path: Path
    built: Path
    swapped: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)

    @property
    def is_copy(self) -> bool:
        return self.path != self.built


def host_layer(scratch: Path) -> HostLayer:
    """The built layer when this host can import it as is, else a copy with host extensions."""
    built = built_layer_dir()
    host = host_machine()
    foreign = sorted(
        path
        for path in built.rglob("*.so*")
        if path.is_file() and elf_machine(path) is not None and not _host_loadable(path, host)
    )
    if not foreign:
        return HostLayer(built, built)
    copy = scratch / "layer-python"
    shutil.copytree(built, copy, symlinks=True)
    result = HostLayer(copy, built)
    site_packages = Path(sysconfig.get_paths()["platlib"])
    for path in foreign:
        relative = path.relative_to(built)
        module, _ = _module_parts(path)
        distribution = _distribution_of(built, relative)
        replacement = next(
            (
                candidate
                for suffix in importlib.machinery.EXTENSION_SUFFIXES
                if (candidate := site_packages / relative.parent / (module + suffix)).is_file()
                and elf_machine(candidate) == host
            ),
            None,
        )
        label = f"{relative} ({machine_name(elf_machine(path))})"
        if (
            replacement is None
            or distribution is None
            or not (site_packages / distribution).is_dir()
        ):
            result.unresolved.append(label)
            continue
        (copy / relative).unlink()
        shutil.copy2(replacement, copy / relative.parent / replacement.name)
        result.swapped.append(
            f"{label} -> {replacement.name} of the venv's {distribution.removesuffix('.dist-info')}"
        )
    return result
