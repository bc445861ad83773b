"""armvisor.toolchain: snippets assemble to the Arm ARM encodings, ELFs link at the virt RAM
base, builds are cached, and a missing toolchain is reported with the Debian packages."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
from capstone import CS_ARCH_ARM64, CS_MODE_ARM, Cs
from elftools.elf.elffile import ELFFile

from armvisor import toolchain
from armvisor.toolchain import BuildError, ToolchainMissing, assemble, build_elf

pytestmark = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-as") is None,
                                reason="AArch64 cross toolchain not installed (./dev installs it)")

# (source, instruction word) from the Arm ARM encodings (C6.2).
KNOWN_ENCODINGS = [
    ("nop", 0xD503201F),  # C6.2.238 NOP: HINT #0
    ("ret", 0xD65F03C0),  # C6.2.254 RET: Rn = X30
    ("hvc #0", 0xD4000002),  # C6.2.148 HVC
    ("add x0, x1, #1", 0x91000420),  # C6.2.4 ADD (immediate), sf=1, imm12=1, Rn=1, Rd=0
    ("movz w0, #0x8400, lsl #16", 0x52B08000),  # C6.2.226 MOVZ, hw=1
    ("wfi", 0xD503207F),  # C6.2.384 WFI: HINT #3
]


@pytest.fixture
def build_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ARMVISOR_BUILD_DIR", str(cache))
    return cache


@pytest.mark.parametrize(("source", "word"), KNOWN_ENCODINGS)
def test_assemble_known_encoding(source: str, word: int) -> None:
    assert assemble(source) == struct.pack("<I", word)


def test_assemble_resolves_local_labels() -> None:
    code = assemble("loop:\n  subs x0, x0, #1\n  b.ne loop\n  adr x1, loop\n  ret")
    insns = [(i.mnemonic, i.op_str) for i in Cs(CS_ARCH_ARM64, CS_MODE_ARM).disasm(code, 0)]
    assert insns == [("subs", "x0, x0, #1"), ("b.ne", "#0"), ("adr", "x1, #0"), ("ret", "")]


def test_assemble_rejects_relocations() -> None:
    with pytest.raises(BuildError, match="relocation"):
        assemble("bl somewhere_else")


def test_assemble_reports_assembler_errors() -> None:
    with pytest.raises(BuildError, match="unknown mnemonic"):
        assemble("frobnicate x0")


def test_build_elf_links_at_virt_ram(tmp_path: Path, build_cache: Path) -> None:
    source = tmp_path / "start.S"
    source.write_text(".global _start\n_start: mov x0, #42\n b _start\n")
    out = build_elf([source], tmp_path / "out" / "guest.elf")
    with out.open("rb") as f:
        elf = ELFFile(f)
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        assert elf["e_machine"] == "EM_AARCH64"
        assert elf["e_entry"] == toolchain.RAM_BASE
        assert [s["p_paddr"] for s in loads] == [toolchain.RAM_BASE]
        assert loads[0].data()[:8] == assemble("mov x0, #42\n b .-4")


def test_build_elf_uses_the_cache(tmp_path: Path, build_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "main.c"
    source.write_text("void _start(void) { for (;;) ; }\n")
    first = build_elf([source], tmp_path / "a.elf").read_bytes()

    def no_compiler(*args: object) -> None:
        raise AssertionError("the compiler ran although the build is cached")

    monkeypatch.setattr(toolchain, "_run", no_compiler)
    assert build_elf([source], tmp_path / "b.elf").read_bytes() == first
    source.write_text("void _start(void) { for (;;) asm volatile(\"nop\"); }\n")
    with pytest.raises(AssertionError, match="compiler ran"):
        build_elf([source], tmp_path / "c.elf")


def test_build_elf_key_includes_headers_and_flags(tmp_path: Path, build_cache: Path) -> None:
    header = tmp_path / "value.h"
    source = tmp_path / "main.c"
    source.write_text('#include "value.h"\nlong v = VALUE;\nvoid _start(void) { for (;;) ; }\n')
    header.write_text("#define VALUE 1\n")
    one = build_elf([source], tmp_path / "1.elf").read_bytes()
    header.write_text("#define VALUE 2\n")
    two = build_elf([source], tmp_path / "2.elf").read_bytes()
    three = build_elf([source], tmp_path / "3.elf", cflags=["-O1"]).read_bytes()
    assert len({one, two, three}) == 3


def test_missing_toolchain_names_debian_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  build_cache: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainMissing, match="gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu"):
        build_elf([tmp_path / "x.c"], tmp_path / "x.elf")
    with pytest.raises(ToolchainMissing, match="aarch64-linux-gnu-as"):
        assemble("nop // not cached: a snippet no other test assembles")


def test_module_reports_tools(capsys: pytest.CaptureFixture[str]) -> None:
    assert toolchain.main() == 0
    out = capsys.readouterr().out
    assert all(f"aarch64-linux-gnu-{name}" in out for name in toolchain.TOOLS)
