"""``armvisor run`` as a user runs it: a subprocess, guest output on stdout, diagnostics on
stderr, documented exit statuses. Where QEMU is installed, the same ELFs run under
``qemu-system-aarch64 -M virt -cpu cortex-a57`` must print the same UART output."""

from __future__ import annotations

import os
import re
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


def test_unassigned_mmio_reads_zero_and_ignores_writes() -> None:
    """QEMU on KVM: an access no device owns is reported once, then a write is dropped."""
    proc = armvisor(fault_elf("UNMAPPED_STORE"))
    assert (proc.returncode, proc.stdout) == (0, b"before\nafter\n")
    assert one_line(proc.stderr) == "armvisor: unassigned MMIO write at 0x70000000 (len 4)\n"


# KVM's inject_abt64 writes EC, IL and FSC 0x10 (synchronous external abort) into ESR_EL1 but not
# WnR; QEMU's TCG sets WnR for a store. Compare ESRs without it.
ESR_ELx_WNR = 1 << 6
EXCEPTION_LINE = re.compile(rb"\*\*\* guest exception: vector (\d+) esr=(0x[0-9a-f]+) elr=(0x[0-9a-f]+) "
                            rb"far=(0x[0-9a-f]+)")


def reported_exception(stdout: bytes) -> tuple[int, int, int, int]:
    match = EXCEPTION_LINE.search(stdout)
    assert match is not None, stdout
    vector, esr, elr, far = (int(field, 0) for field in match.groups())
    return vector, esr & ~ESR_ELx_WNR, elr, far


def test_strict_mmio_injects_external_abort() -> None:
    """--strict-mmio: a synchronous external abort (DABT_CUR, FSC 0x10) at the store, taken to
    the guest's current-EL SPx synchronous vector (entry 4), which reports it and resets."""
    elf = fault_elf("UNMAPPED_STORE")
    proc = armvisor("--strict-mmio", elf)
    assert proc.returncode == 2
    assert proc.stdout.startswith(b"before\n\n*** guest exception:")
    assert reported_exception(proc.stdout) == (4, 0x9600_0010, symbol(elf, "fault_insn"), 0x7000_0000)


def test_mmio_without_syndrome_is_a_guest_crash() -> None:
    proc = armvisor(fault_elf("NO_SYNDROME"))
    assert (proc.returncode, proc.stdout) == (3, b"before\n")
    line = one_line(proc.stderr)
    assert "cannot emulate for MMIO" in line and "ISV=0" in line and "address 0x9000000" in line


def test_wfi_without_interrupt_source() -> None:
    proc = armvisor(fault_elf("WFI"))
    assert (proc.returncode, proc.stdout) == (3, b"before\n")
    assert "guest halted in WFI with no interrupt source" in one_line(proc.stderr)


def test_all_vcpus_off_is_a_hang() -> None:
    proc = armvisor(fault_elf("CPU_OFF"))
    assert (proc.returncode, proc.stdout) == (3, b"before\n")
    assert "every vcpu is powered off" in one_line(proc.stderr)


def test_exception_loop_is_a_guest_crash(tmp_path: Path) -> None:
    """A raw binary of text: its first word is UNDEFINED, VBAR_EL1 is 0 at reset, and the
    vector at 0x200 (current EL, SPx) is not memory: the instruction abort recurs forever."""
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an ELF\n")
    proc = armvisor(text_file, timeout=60)
    assert (proc.returncode, proc.stdout) == (3, b"")
    line = one_line(proc.stderr)
    assert "exception loop" in line and "ELR_EL1 0x200" in line and "ESR_EL1 0x86000010" in line


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


@pytest.mark.parametrize("case", ["missing", "empty", "host-elf", "outside-ram", "bad-size", "no-file",
                                  "two-files", "bad-option", "S-without-gdb", "gdb-with-timeout", "bad-dtb",
                                  "smp-over-gicv2"])
def test_bad_input(case: str, tmp_path: Path, hello_elf: Path) -> None:
    empty_file = tmp_path / "empty.bin"
    empty_file.write_bytes(b"")
    args = {
        "missing": [tmp_path / "missing.elf"],
        "empty": [empty_file],
        "host-elf": [sys.executable],  # an ELF for the host, not for AArch64
        "outside-ram": [elf_with_segment_at(tmp_path, hello_elf, 0x2000_0000)],
        "bad-size": ["-m", "12Q", hello_elf],
        "no-file": [],
        "two-files": [hello_elf, "-kernel", hello_elf],
        "bad-option": ["--no-such-option", hello_elf],
        "S-without-gdb": ["-S", hello_elf],
        "gdb-with-timeout": ["-s", "--timeout", "5", hello_elf],
        "bad-dtb": ["-dtb", empty_file, hello_elf],
        "smp-over-gicv2": ["-smp", "9", hello_elf],
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


# -- devices, SMP, device tree, tracing -------------------------------------------------------
# PrimeCell IDs: PeriphID0-3 then PCellID0-3 (0x0d 0xf0 0x05 0xb1, DDI0183 3.3.15), with the part
# numbers 0x011 / 0x031 and the revision fields QEMU's pl011_id_arm / pl031_id report.
DEVICES_EXPECTED = b"""pl011 id 0x11 0x10 0x14 0x00 0x0d 0xf0 0x05 0xb1
pl031 id 0x31 0x10 0x14 0x00 0x0d 0xf0 0x05 0xb1
pl011 cr 0x300
pl011 imsc 0x0
pl011 fr & txfe|rxfe 0x90
pl011 periphid0 (byte) 0x11
pl031 pcellid1 (halfword) 0xf0
pl031 after load 0x1
"""


def split_rtc(stdout: bytes) -> tuple[bytes, int]:
    """The devices guest's output without its last line, and the RTC seconds it printed."""
    head, _, last = stdout.rstrip(b"\n").rpartition(b"\n")
    assert last.startswith(b"rtc "), stdout
    return head + b"\n", int(last[4:])


def test_devices_guest() -> None:
    """UART reset values (UARTCR 0x300: TXE|RXE, DDI0183 3.3.8; TXFE|RXFE in UARTFR) and the
    RTC counting host time (PL031 RTCDR, seconds since the epoch as QEMU's virt sets it)."""
    before = time.time()
    proc = armvisor(build_guest("devices"))
    assert proc.returncode == 0, proc.stderr.decode()
    output, rtc = split_rtc(proc.stdout)
    assert output == DEVICES_EXPECTED
    assert int(before) - 1 <= rtc <= time.time() + 1


SMP_EXPECTED = (b"hello from cpu 0, mpidr 0x80000000\ncpu_on 0\nhello from cpu 1, mpidr 0x80000001\n"
                b"cpu 1 is off again; cpu_on twice: -4\n")  # -4: PSCI ALREADY_ON (DEN 0022 5.6.2)


def test_two_vcpus_psci_cpu_on() -> None:
    proc = armvisor("-smp", "2", build_guest("smp"))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, SMP_EXPECTED, b"")


def test_cpu_on_without_second_vcpu() -> None:
    """With one CPU, CPU_ON for MPIDR 1 names no CPU: INVALID_PARAMETERS (-2); the guest then
    waits forever for the CPU to report, until --timeout."""
    proc = armvisor("--timeout", "1", build_guest("smp"), timeout=60)
    assert (proc.returncode, proc.stdout) == (4, b"hello from cpu 0, mpidr 0x80000000\ncpu_on -2\n")


def test_dump_dtb_decompiles_cleanly(hello_elf: Path, tmp_path: Path) -> None:
    dtc = shutil.which("dtc")
    if dtc is None:
        pytest.skip("dtc (device-tree-compiler) not installed")
    blob = tmp_path / "virt.dtb"
    proc = armvisor("--dump-dtb", blob, "-smp", "2", "-append", "console=ttyAMA0", hello_elf)
    assert (proc.returncode, proc.stdout) == (0, b"Hello from armvisor!\n")  # then runs as usual
    dts = run([dtc, "-I", "dtb", "-O", "dts", str(blob)])
    assert (dts.returncode, dts.stderr) == (0, b"")
    text = dts.stdout.decode()
    assert 'bootargs = "console=ttyAMA0";' in text and "cpu@1" in text


def test_trace_exits(hello_elf: Path) -> None:
    """Each character is a UARTFR read then a UARTDR write (uart.c): two MMIO exits."""
    proc = armvisor("--trace", "exits", hello_elf)
    assert (proc.returncode, proc.stdout) == (0, b"Hello from armvisor!\n")
    lines = proc.stderr.decode().splitlines()
    writes = [line for line in lines if "MMIO" in line and "write len 4 at 0x9000000" in line]
    reads = [line for line in lines if "MMIO" in line and "read len 4 at 0x9000018" in line]
    assert len(writes) == len(reads) == len("Hello from armvisor!\n")
    assert all("EC 0x24 DABT_LOW" in line for line in writes)
    assert any("SYSTEM_EVENT EC 0x16 HVC64" in line for line in lines)


def test_stats(hello_elf: Path) -> None:
    proc = armvisor("--stats", hello_elf)
    assert (proc.returncode, proc.stdout) == (0, b"Hello from armvisor!\n")
    rows = {line.split()[0]: int(line.split()[1]) for line in proc.stderr.decode().splitlines()[2:]}
    characters = len("Hello from armvisor!\n")
    assert rows["kvm_exit(DABT_LOW)"] == 2 * characters
    assert rows["kvm_userspace_exit(MMIO)"] == 2 * characters
    assert rows["kvm_exit(HVC64)"] == rows["kvm_userspace_exit(SYSTEM_EVENT)"] == 1


def test_trace_insn_single_steps(hello_elf: Path) -> None:
    """Every instruction, from the ELF entry to the HVC of SYSTEM_OFF, disassembled."""
    proc = armvisor("--trace", "insn", hello_elf)
    assert (proc.returncode, proc.stdout) == (0, b"Hello from armvisor!\n")
    lines = proc.stderr.decode().splitlines()
    with hello_elf.open("rb") as f:
        entry = ELFFile(f)["e_entry"]
    assert lines[0].startswith(f"insn vcpu0 0x{entry:016x}: ")
    assert lines[-1].endswith("hvc #0")
    assert sum(" str w" in line for line in lines) >= len("Hello from armvisor!\n")


def test_trace_blocks_and_no_translate() -> None:
    """--trace blocks shows the generated source of the hot loop; --no-translate runs the same
    guest to the same output on decoded instructions only (and so translates nothing)."""
    elf = build_guest("intloop", {"ITERATIONS": 3000})
    traced = armvisor("--trace", "blocks", elf)
    assert (traced.returncode, traced.stdout) == (0, intloop_expected(3000))
    text = traced.stderr.decode()
    assert "translated 0x" in text and re.search(r"def loop_[0-9a-f]+\(s, room", text)
    plain = armvisor("--no-translate", "--trace", "blocks", elf)
    assert (plain.returncode, plain.stdout, plain.stderr) == (0, intloop_expected(3000), b"")


def test_serial_file(hello_elf: Path, tmp_path: Path) -> None:
    out = tmp_path / "uart.txt"
    proc = armvisor("-serial", f"file:{out}", hello_elf)
    assert (proc.returncode, proc.stdout) == (0, b"")
    assert out.read_bytes() == b"Hello from armvisor!\n"


# -- the same guests under QEMU --------------------------------------------------------------
# guest -> (ELF, extra options for both, armvisor's status: 0 SYSTEM_OFF / 2 SYSTEM_RESET from the
# guest's source). QEMU runs with -no-reboot, so it exits 0 on both.
QEMU_GUESTS = {
    "hello": lambda: (build_guest("hello"), [], 0),
    "example": lambda: (Path(run([sys.executable, str(REPO / "examples" / "build.py"), "hello"])
                             .stdout.decode().strip()), [], 0),
    "crc_sort": lambda: (crc_sort_elf(*CRC_CASES[1]), [], 0),
    "intloop": lambda: (build_guest("intloop", {"ITERATIONS": 500}), [], 0),
    "psci_calls": lambda: (build_guest("psci_calls"), [], 2),
    "exception": lambda: (fault_elf("UNDEFINED"), [], 2),
    "smp": lambda: (build_guest("smp"), ["-smp", "2"], 0),
}


@pytest.mark.skipif(QEMU is None, reason="qemu-system-aarch64 not installed")
@pytest.mark.parametrize("guest", QEMU_GUESTS)
def test_same_output_as_qemu(guest: str) -> None:
    elf, options, status = QEMU_GUESTS[guest]()
    qemu = run([*QEMU_VIRT[:-1], *options, "-kernel", str(elf)], timeout=60)
    assert qemu.returncode == 0, qemu.stderr.decode()
    ours = armvisor(*options, elf)
    assert ours.returncode == status, ours.stderr.decode()
    assert ours.stdout == qemu.stdout


@pytest.mark.skipif(QEMU is None, reason="qemu-system-aarch64 not installed")
def test_devices_same_as_qemu() -> None:
    elf = build_guest("devices")
    qemu = run([*QEMU_VIRT, str(elf)], timeout=60)
    ours = armvisor(elf)
    assert (ours.returncode, qemu.returncode) == (0, 0)
    (ours_out, ours_rtc), (qemu_out, qemu_rtc) = split_rtc(ours.stdout), split_rtc(qemu.stdout)
    assert ours_out == qemu_out
    assert abs(ours_rtc - qemu_rtc) <= 120  # both count host time


@pytest.mark.skipif(QEMU is None, reason="qemu-system-aarch64 not installed")
def test_strict_mmio_same_abort_as_qemu_tcg() -> None:
    elf = fault_elf("UNMAPPED_STORE")
    qemu = run([*QEMU_VIRT, str(elf)], timeout=60)
    ours = armvisor("--strict-mmio", elf)
    assert ours.returncode == 2 and qemu.returncode == 0
    assert reported_exception(ours.stdout) == reported_exception(qemu.stdout)
