"""The minimal runner of ``armvisor run`` (issue #2), driven with hand-made EL2 stops: MMIO
emulation from the data-abort syndrome (Arm ARM D17.2.37, ISS of a Data Abort: ISV, SAS, SSE,
SRT, SF, WnR), PSCI over HVC as KVM answers it, and QEMU's ``-m`` size syntax."""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from armvisor.arch.esr import ESR_ELx_EC_DABT_LOW, ESR_ELx_EC_HVC64, ESR_ELx_FSC_FAULT, ESR_ELx_WNR, dabt_iss_access, esr
from armvisor.cli.run import (
    PL011_BASE,
    PSCI_RET_NOT_SUPPORTED,
    RAM_BASE,
    UARTFR,
    ExitStatus,
    GuestExit,
    MinimalRunner,
    parse_size,
)
from armvisor.cpu import HypTrap, WaitForInterrupt
from guests import build_guest

pytestmark = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None,
                                reason="AArch64 cross toolchain not installed (./dev installs it)")

MASK64 = (1 << 64) - 1
ELR = RAM_BASE + 0x100


@pytest.fixture(scope="module")
def hello_elf() -> Path:
    return build_guest("hello")


@pytest.fixture
def runner(hello_elf: Path) -> MinimalRunner:
    return MinimalRunner(hello_elf, 1 << 20, console=io.BytesIO())


def mmio_trap(address: int, *, size_log2: int, rt: int, write: bool, sse: bool = False,
              sf: bool = True, isv: bool = True) -> HypTrap:
    """The stop a stage-2 translation fault (level 3) on ``address`` produces."""
    iss = (dabt_iss_access(size_log2, sse, rt, sf, False) if isv else 0) | ESR_ELx_FSC_FAULT + 3
    iss |= ESR_ELx_WNR if write else 0
    return HypTrap(esr(ESR_ELx_EC_DABT_LOW, iss), address, (address >> 12) << 4, ELR)


class ConstantDevice:
    """A device whose every register reads as ``value``."""

    def __init__(self, value: int) -> None:
        self.value = value

    def read(self, offset: int, size: int) -> int:
        return self.value

    def write(self, offset: int, size: int, value: int) -> None:
        raise AssertionError("unexpected write")


@pytest.mark.parametrize(("text", "size"), [("64M", 64 << 20), ("1G", 1 << 30), ("128", 128 << 20),
                                             ("8k", 8 << 10), ("1.5G", 3 << 29)])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["12Q", "0", "1000B", "M", "-1G"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(text)


def test_loads_segments_at_reset_state(runner: MinimalRunner, hello_elf: Path) -> None:
    with hello_elf.open("rb") as f:
        elf = ELFFile(f)
        assert runner.pc == elf["e_entry"]
        for seg in (s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"):
            assert runner.cpu.phys.read(seg["p_paddr"], seg["p_filesz"]) == seg.data()
    s = runner.cpu.state
    assert (s.el, s.spsel, s.daif) == (1, 1, 0x3C0)  # EL1h, D, A, I, F masked


def test_uart_write_goes_to_console(runner: MinimalRunner) -> None:
    runner.cpu.state.x[5] = 0x1234_5641  # only the low byte reaches UARTDR's data field
    runner.handle_exit(mmio_trap(PL011_BASE, size_log2=2, rt=5, write=True))
    assert runner.uart.console.getvalue() == b"A"
    assert runner.pc == ELR + 4


def test_uart_flags_read_idle(runner: MinimalRunner) -> None:
    runner.cpu.state.x[3] = MASK64
    runner.handle_exit(mmio_trap(PL011_BASE + UARTFR, size_log2=2, rt=3, write=False, sf=False))
    assert runner.cpu.state.x[3] == 0x90  # TXFE | RXFE
    assert runner.pc == ELR + 4


@pytest.mark.parametrize(("size_log2", "sse", "sf", "value", "expected"), [
    (0, True, True, 0x80, 0xFFFF_FFFF_FFFF_FF80),  # LDRSB Xt
    (0, True, False, 0x80, 0xFFFF_FF80),  # LDRSB Wt
    (1, True, True, 0x7FFF, 0x7FFF),  # LDRSH Xt, positive
    (1, False, False, 0x8000, 0x8000),  # LDRH
    (2, True, True, 0x8000_0000, 0xFFFF_FFFF_8000_0000),  # LDRSW
    (3, False, True, 0x8000_0000_0000_0001, 0x8000_0000_0000_0001),  # LDR Xt
])
def test_mmio_read_extends_per_syndrome(runner: MinimalRunner, size_log2: int, sse: bool, sf: bool,
                                        value: int, expected: int) -> None:
    base = 0x0A00_0000
    runner.devices.append((base, 0x1000, ConstantDevice(value)))
    runner.handle_exit(mmio_trap(base + 8, size_log2=size_log2, rt=7, write=False, sse=sse, sf=sf))
    assert runner.cpu.state.x[7] == expected


def test_mmio_read_into_xzr_is_discarded(runner: MinimalRunner) -> None:
    runner.handle_exit(mmio_trap(PL011_BASE + UARTFR, size_log2=2, rt=31, write=False))
    assert runner.cpu.state.x[31] == 0


def test_mmio_without_device_crashes(runner: MinimalRunner) -> None:
    with pytest.raises(GuestExit) as done:
        runner.handle_exit(mmio_trap(0x7000_0010, size_log2=2, rt=1, write=True))
    assert done.value.status == ExitStatus.GUEST_CRASH
    assert "0x70000010" in done.value.message and f"PC 0x{ELR:x}" in done.value.message


def test_mmio_without_syndrome_crashes(runner: MinimalRunner) -> None:
    with pytest.raises(GuestExit) as done:
        runner.handle_exit(mmio_trap(PL011_BASE, size_log2=2, rt=1, write=True, isv=False))
    assert done.value.status == ExitStatus.GUEST_CRASH and "ISV=0" in done.value.message


def hvc(runner: MinimalRunner, x0: int) -> list[int]:
    x = runner.cpu.state.x
    x[0:4] = [x0, 11, 22, 33]
    runner.handle_exit(HypTrap(esr(ESR_ELx_EC_HVC64, 0), 0, 0, ELR))
    return x[0:4]


def test_psci_version(runner: MinimalRunner) -> None:
    assert hvc(runner, 0x8400_0000) == [0x1_0001, 0, 0, 0]  # PSCI 1.1, x1-x3 cleared as KVM does


def test_psci_function_id_is_w0(runner: MinimalRunner) -> None:
    assert hvc(runner, 0xFFFF_FFFF_8400_0000) == [0x1_0001, 0, 0, 0]


@pytest.mark.parametrize("function", [0x8400_0001, 0xC400_0003, 0x8000_0000, 0])
def test_psci_unknown_is_not_supported(runner: MinimalRunner, function: int) -> None:
    assert hvc(runner, function) == [PSCI_RET_NOT_SUPPORTED, 0, 0, 0]


@pytest.mark.parametrize(("function", "status"), [(0x8400_0008, ExitStatus.POWER_OFF),
                                                  (0x8400_0009, ExitStatus.RESET)])
def test_psci_system_off_and_reset(runner: MinimalRunner, function: int, status: ExitStatus) -> None:
    with pytest.raises(GuestExit) as done:
        hvc(runner, function)
    assert done.value.status == status


def test_wfi_without_interrupt_source_crashes(runner: MinimalRunner) -> None:
    with pytest.raises(GuestExit) as done:
        runner.handle_wfi(WaitForInterrupt())
    assert done.value.status == ExitStatus.GUEST_CRASH
    assert "guest halted in WFI with no interrupt source" in done.value.message
