"""The arm64 check itself: it must catch an x86_64 library, not only pass a good layer."""

from pathlib import Path

from tools.check_layer_arch import check


def elf(path: Path, machine: int) -> None:
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    header[4], header[5] = 2, 1  # 64-bit, little endian
    header[18:20] = machine.to_bytes(2, "little")
    path.write_bytes(bytes(header))


def test_accepts_aarch64_only(tmp_path: Path) -> None:
    elf(tmp_path / "core.cpython-313-aarch64-linux-gnu.so", 183)
    assert check(tmp_path) == []


def test_rejects_x86_64_whatever_the_name_says(tmp_path: Path) -> None:
    elf(tmp_path / "core.cpython-313-aarch64-linux-gnu.so", 62)
    assert check(tmp_path) == ["core.cpython-313-aarch64-linux-gnu.so: x86_64"]


def test_rejects_a_layer_without_native_code(tmp_path: Path) -> None:
    (tmp_path / "module.py").write_text("")
    assert check(tmp_path) != []
