"""Fail unless every native library in a built layer is aarch64 (Lambda arm64).

`sam build` of a layer without `BuildArchitecture: arm64` silently packs x86_64 wheels;
this reads the ELF header of every shared object instead of trusting file names.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

ELF_MAGIC = b"\x7fELF"
MACHINES = {183: "aarch64", 62: "x86_64", 3: "i386", 40: "arm"}


def elf_machine(path: Path) -> str | None:
    with path.open("rb") as stream:
        header = stream.read(20)
    if len(header) < 20 or header[:4] != ELF_MAGIC:
        return None
    byteorder: Literal["little", "big"] = "little" if header[5] == 1 else "big"
    code = int.from_bytes(header[18:20], byteorder)
    return MACHINES.get(code, f"machine {code}")


def check(layer_dir: Path) -> list[str]:
    """Problems found, empty when the layer holds aarch64 libraries only (and some)."""
    if not layer_dir.is_dir():
        return [f"{layer_dir} does not exist: run `sam build` first"]
    machines = {path: elf_machine(path) for path in sorted(layer_dir.rglob("*.so*"))}
    native = {path: machine for path, machine in machines.items() if machine}
    problems = [
        f"{path.relative_to(layer_dir)}: {machine}"
        for path, machine in native.items()
        if machine != "aarch64"
    ]
    if not native:
        problems.append(f"no native libraries in {layer_dir}: was pydantic-core packed?")
    return problems


def main() -> int:
    layer_dir = Path(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build/SharedLayer")
    problems = check(layer_dir)
    if problems:
        print("layer is not built for arm64:\n  " + "\n  ".join(problems))
        return 1
    count = sum(1 for path in layer_dir.rglob("*.so*") if elf_machine(path))
    print(f"{layer_dir}: {count} native libraries, all aarch64")
    return 0


if __name__ == "__main__":
    sys.exit(main())
