"""``armvisor run`` as a user runs it: a subprocess, guest output on stdout, diagnostics on
stderr, documented exit statuses. Where QEMU is installed, the same ELFs run under
``qemu-system-aarch64 -M virt -cpu cortex-a57`` must print the same UART output."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from guests import build_guest, c_string

pytestmark = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None,
                                reason="AArch64 cross toolchain not installed (./dev installs it)")

REPO = Path(__file__).resolve().parents[2]
ARMVISOR_RUN = [sys.executable, "-m", "armvisor.cli.main", "run"]
QEMU = shutil.which("qemu-system-aarch64")
# -no-reboot: PSCI SYSTEM_RESET ends QEMU too (the guests' crash path resets).
QEMU_VIRT = [QEMU or "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-display", "none",
             "-serial", "stdio", "-monitor", "none", "-net", "none", "-no-reboot", "-kernel"]
TIMEOUT = 120  # seconds for one guest run


def run(argv: list[str], timeout: float = TIMEOUT) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` in its own process group; on timeout kill that group (by our child's pid)."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def armvisor(*args: str | Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[bytes]:
    return run([*ARMVISOR_RUN, *map(str, args)], timeout)


def symbol(elf: Path, name: str) -> int:
    with elf.open("rb") as f:
        return ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)[0]["st_value"]


def one_line(stderr: bytes) -> str:
    text = stderr.decode()
    assert "Traceback" not in text
    assert text.endswith("\n") and text.count("\n") == 1, text
    return text


# -- inputs and the outputs Python expects from them ------------------------------------------
CRC_CASES = [("The quick brown fox jumps over the lazy dog", 1, 64), ("armvisor", 0xDEADBEEF, 200)]


def lcg_numbers(seed: int, count: int) -> list[int]:
    """crc_sort.c's array: 32-bit LCG states read as int32_t and shifted right by 4."""
    x, out = seed, []
    for _ in range(count):
        x = (x * 1103515245 + 12345) & 0xFFFF_FFFF
        out.append((x - (1 << 32) if x >> 31 else x) >> 4)
    return out


def crc_sort_expected(text: str, seed: int, count: int) -> bytes:
    numbers = " ".join(map(str, sorted(lcg_numbers(seed, count))))
    return f"crc32 0x{zlib.crc32(text.encode()):08x}\nsorted {numbers}\n".encode()


def intloop_expected(iterations: int) -> bytes:
    mask = (1 << 64) - 1
    state, acc = 0x9E3779B97F4A7C15, 0
    for i in range(iterations):
        state ^= (state << 13) & mask
        state ^= state >> 7
        state ^= (state << 17) & mask
        acc = (acc + state * 3) & mask if state & 1 else acc ^ ((state + i) & mask)
    return f"intloop 0x{acc:016x}\n".encode()


def crc_sort_elf(text: str, seed: int, count: int) -> Path:
    return build_guest("crc_sort", {"CRC_TEXT": c_string(text), "SORT_SEED": f"{seed}u", "SORT_COUNT": count})


def fault_elf(fault: str) -> Path:
    return build_guest("faults", {"FAULT": f"FAULT_{fault}"})


@pytest.fixture(scope="module")
def hello_elf() -> Path:
    return build_guest("hello")


@pytest.fixture(scope="module")
def example_elf() -> Path:
    proc = run([sys.executable, str(REPO / "examples" / "build.py"), "hello"])
    assert proc.returncode == 0, proc.stderr.decode()
    return Path(proc.stdout.decode().strip())


# -- guests that power off -------------------------------------------------------------------
def test_hello(hello_elf: Path) -> None:
    proc = armvisor(hello_elf)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"Hello from armvisor!\n", b"")


def test_hello_qemu_spelling(hello_elf: Path) -> None:
    proc = armvisor("-m", "64M", "-kernel", hello_elf)
    assert (proc.returncode, proc.stdout) == (0, b"Hello from armvisor!\n")


def test_quick_start_example(example_elf: Path) -> None:
    proc = armvisor(example_elf)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"Hello from armvisor!\n", b"")


@pytest.mark.parametrize(("text", "seed", "count"), CRC_CASES)
def test_crc_sort(text: str, seed: int, count: int) -> None:
    proc = armvisor(crc_sort_elf(text, seed, count))
    assert proc.stdout == crc_sort_expected(text, seed, count)
    assert proc.returncode == 0, proc.stderr.decode()


def test_intloop() -> None:
    proc = armvisor(build_guest("intloop", {"ITERATIONS": 500}))
    assert (proc.returncode, proc.stdout) == (0, intloop_expected(500))


def test_psci_calls_then_reset() -> None:
    proc = armvisor(build_guest("psci_calls"))
    assert proc.stdout == b"version 0x10001\nunknown 0xffffffffffffffff\n"
    assert proc.returncode == 2
    assert "SYSTEM_RESET" in one_line(proc.stderr)


# -- guests that go wrong --------------------------------------------------------------------
def test_guest_exception_is_reported_by_its_vectors() -> None:
    """UDF is UNDEFINED (EC 0x00, IL=1): crt0's vector (current EL, SPx, synchronous = entry 4)
    prints ESR/ELR and resets."""
    elf = fault_elf("UNDEFINED")
    proc = armvisor(elf)
    assert proc.stdout.startswith(b"before\n\n*** guest exception: vector 4 esr=0x0000000002000000 "
                                  b"elr=0x%016x far=" % symbol(elf, "fault_insn"))
    assert proc.returncode == 2


def test_unknown_mmio_is_a_guest_crash() -> None:
    elf = fault_elf("UNMAPPED_STORE")
    proc = armvisor(elf)
    assert (proc.returncode, proc.stdout) == (3, b"before\n")
    line = one_line(proc.stderr)
    assert "guest crash" in line and "0x70000000" in line and f"PC 0x{symbol(elf, 'fault_insn'):x}" in line


def test_mmio_without_syndrome_is_a_guest_crash() -> None:
    proc = armvisor(fault_elf("NO_SYNDROME"))
    assert (proc.returncode, proc.stdout) == (3, b"before\n")
    assert "ISV=0" in one_line(proc.stderr)


def test_wfi_without_interrupt_source() -> None:
    proc = armvisor(fault_elf("WFI"))
    assert (proc.returncode, proc.stdout) == (3, b"before\n")
    assert "guest halted in WFI with no interrupt source" in one_line(proc.stderr)


@pytest.mark.parametrize("limit", [["--max-insns", "20000"], ["--timeout", "0.5"]])
def test_timeout(limit: list[str]) -> None:
    proc = armvisor(*limit, fault_elf("SPIN"), timeout=60)
    assert (proc.returncode, proc.stdout) == (4, b"before\n")
    assert "timeout" in one_line(proc.stderr)


def test_ctrl_c_reports_pc() -> None:
    elf = fault_elf("SPIN")
    proc = subprocess.Popen([*ARMVISOR_RUN, str(elf)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"before\n"  # the guest is spinning
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130
    assert f"PC 0x{symbol(elf, 'fault_insn'):x}" in one_line(err)


# -- bad input -------------------------------------------------------------------------------
def elf_with_segment_at(tmp_path: Path, source: Path, paddr: int) -> Path:
    """A copy of ``source`` whose first program header (PT_LOAD) has physical address ``paddr``."""
    data = bytearray(source.read_bytes())
    phoff = int.from_bytes(data[0x20:0x28], "little")  # ELF64 e_phoff
    data[phoff + 0x18:phoff + 0x20] = paddr.to_bytes(8, "little")  # Elf64_Phdr.p_paddr
    out = tmp_path / "moved.elf"
    out.write_bytes(data)
    return out


@pytest.mark.parametrize("case", ["missing", "text", "host-elf", "outside-ram", "bad-size", "no-file",
                                  "two-files", "bad-option"])
def test_bad_input(case: str, tmp_path: Path, hello_elf: Path) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an ELF\n")
    args = {
        "missing": [tmp_path / "missing.elf"],
        "text": [text_file],
        "host-elf": [sys.executable],  # an ELF for the host, not for AArch64
        "outside-ram": [elf_with_segment_at(tmp_path, hello_elf, 0x2000_0000)],
        "bad-size": ["-m", "12Q", hello_elf],
        "no-file": [],
        "two-files": [hello_elf, "-kernel", hello_elf],
        "bad-option": ["--no-such-option", hello_elf],
    }[case]
    proc = armvisor(*args)
    assert (proc.returncode, proc.stdout) == (1, b"")
    one_line(proc.stderr)


def test_segment_beyond_ram_size(hello_elf: Path, tmp_path: Path) -> None:
    moved = elf_with_segment_at(tmp_path, hello_elf, 0x4000_0000 + (64 << 20))
    proc = armvisor("-m", "64M", moved)
    assert proc.returncode == 1 and "outside RAM" in one_line(proc.stderr)


def test_console_script(hello_elf: Path) -> None:
    script = shutil.which("armvisor", path=os.path.dirname(sys.executable)) or shutil.which("armvisor")
    if script is None:
        pytest.skip("the armvisor console script is not installed")
    proc = run([script, "run", str(hello_elf)])
    assert (proc.returncode, proc.stdout) == (0, b"Hello from armvisor!\n")


# -- the same guests under QEMU --------------------------------------------------------------
QEMU_GUESTS = {
    "hello": lambda: build_guest("hello"),
    "example": lambda: Path(run([sys.executable, str(REPO / "examples" / "build.py"), "hello"]).stdout.decode().strip()),
    "crc_sort": lambda: crc_sort_elf(*CRC_CASES[1]),
    "intloop": lambda: build_guest("intloop", {"ITERATIONS": 500}),
    "psci_calls": lambda: build_guest("psci_calls"),
    "exception": lambda: fault_elf("UNDEFINED"),
}


@pytest.mark.skipif(QEMU is None, reason="qemu-system-aarch64 not installed")
@pytest.mark.parametrize("guest", QEMU_GUESTS)
def test_same_output_as_qemu(guest: str) -> None:
    elf = QEMU_GUESTS[guest]()
    qemu = run([*QEMU_VIRT, str(elf)], timeout=60)
    assert qemu.returncode == 0, qemu.stderr.decode()
    ours = armvisor(elf)
    assert ours.returncode in (0, 2), ours.stderr.decode()  # both powered off or reset
    assert ours.stdout == qemu.stdout
