"""``armvisor run``: the minimal runner.

This is the minimal runner that the hyp layer (issue #3: our KVM, with its exit-handler table,
MMIO completion and PSCI) and the vmm layer (issue #4: machine, devices, device tree, loaders)
replace; the command line and the exit statuses stay. It boots an AArch64 ELF on one PE with
RAM at 0x4000_0000, as QEMU's ``virt`` board has it, and serves what the PE stops for with
just enough machine for bare-metal guests:

* data aborts on the PL011 UART at 0x0900_0000 (UARTDR writes reach stdout, UARTFR reads idle),
  emulated from the instruction syndrome in ESR_EL2, as KVM does for MMIO;
* HVC PSCI calls: PSCI_VERSION, SYSTEM_OFF, SYSTEM_RESET; anything else is NOT_SUPPORTED.

Every other stop ends the run with a one-line diagnostic on stderr. stdout carries only what
the guest writes to the UART.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import time
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from types import FrameType
from typing import BinaryIO, NoReturn

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from armvisor.arch import esr as esr_names
from armvisor.arch.esr import (
    ESR_ELx_EC_DABT_LOW,
    ESR_ELx_EC_HVC64,
    ESR_ELx_ISV,
    ESR_ELx_SAS,
    ESR_ELx_SAS_SHIFT,
    ESR_ELx_SF,
    ESR_ELx_SRT_MASK,
    ESR_ELx_SRT_SHIFT,
    ESR_ELx_SSE,
    ESR_ELx_WNR,
    esr_ec,
)
from armvisor.cpu import Budget, Cpu, HypTrap, PhysicalMemory, Stop, WaitForInterrupt
from armvisor.cpu.memory import PAGE_SIZE
from armvisor.cpu.state import MASK32, MASK64, ZR_WRITE
from armvisor.cpu.stops import UnsupportedFeature

NAME = "run"
HELP = "boot a bare-metal AArch64 guest (an ELF) on a virt-like board"

RAM_BASE = 0x4000_0000
DEFAULT_RAM_SIZE = 128 << 20
CHUNK = 100_000  # instructions per Cpu.run call: the granularity of timeouts and Ctrl-C

# PL011 (ARM PrimeCell UART TRM, 3.2 register summary).
PL011_BASE = 0x0900_0000
PL011_SIZE = 0x1000
UARTDR = 0x000
UARTFR = 0x018
UARTFR_RXFE = 1 << 4
UARTFR_TXFE = 1 << 7

# PSCI 0.2+ function IDs and return values (Arm DEN 0022, Linux uapi/linux/psci.h).
PSCI_0_2_FN_PSCI_VERSION = 0x8400_0000
PSCI_0_2_FN_SYSTEM_OFF = 0x8400_0008
PSCI_0_2_FN_SYSTEM_RESET = 0x8400_0009
PSCI_VERSION_1_1 = 0x1_0001
PSCI_RET_NOT_SUPPORTED = -1 & MASK64


class ExitStatus(IntEnum):
    """Exit statuses of ``armvisor run``."""

    POWER_OFF = 0  # PSCI SYSTEM_OFF
    BAD_INPUT = 1  # unusable command line or image
    RESET = 2  # PSCI SYSTEM_RESET
    GUEST_CRASH = 3  # a stop the runner cannot serve
    TIMEOUT = 4  # --max-insns or --timeout ran out
    INTERRUPTED = 130  # SIGINT (128 + 2, as shells report it)


class GuestExit(Exception):
    """The run is over: exit with ``status``, printing ``message`` (if any) on stderr."""

    def __init__(self, status: ExitStatus, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BadInput(Exception):
    """The image or an option cannot be used; the message is the one-line explanation."""


def ec_name(ec: int) -> str:
    """``ESR_ELx_EC_*`` name of an exception class, without the prefix."""
    return _EC_NAMES.get(ec, "reserved")


_EC_NAMES = {
    value: name.removeprefix("ESR_ELx_EC_")
    for name, value in vars(esr_names).items()
    if name.startswith("ESR_ELx_EC_") and name not in ("ESR_ELx_EC_SHIFT", "ESR_ELx_EC_MASK", "ESR_ELx_EC_MAX")
}

_SIZE_UNITS = {"": 20, "B": 0, "K": 10, "M": 20, "G": 30, "T": 40}


def parse_size(text: str) -> int:
    """RAM size in QEMU's ``-m`` syntax: ``64M``, ``1G``, ``512`` (MiB by default)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([BKMGT]?)", text.strip(), re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (examples: 64M, 1G)")
    size = int(float(match[1]) * (1 << _SIZE_UNITS[match[2].upper()]))
    if size <= 0 or size % PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"RAM size {text!r} is not a positive multiple of 4K")
    return size


def _positive(kind: Callable[[str], int | float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse


def load_elf(path: Path, phys: PhysicalMemory) -> int:
    """Copy the PT_LOAD segments of an AArch64 ELF to their physical addresses (as QEMU's
    ``-kernel`` does) and return the entry point."""
    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            if elf.elfclass != 64 or elf["e_machine"] != "EM_AARCH64" or not elf.little_endian:
                raise BadInput(f"{path}: not a little-endian AArch64 ELF ({elf['e_machine']}, "
                               f"{elf.elfclass}-bit)")
            for segment in elf.iter_segments():
                if segment["p_type"] == "PT_LOAD" and segment["p_memsz"]:
                    _load_segment(path, phys, segment["p_paddr"], segment["p_memsz"], segment.data())
            entry = elf["e_entry"]
    except OSError as err:
        raise BadInput(f"cannot read {path}: {err.strerror}") from None
    except ELFError as err:
        raise BadInput(f"{path}: not a valid ELF file ({err})") from None
    if phys.find(entry, 4) is None:
        raise BadInput(f"{path}: entry point 0x{entry:x} is outside RAM")
    return entry


def _load_segment(path: Path, phys: PhysicalMemory, base: int, memsz: int, data: bytes) -> None:
    if phys.find(base, memsz) is None:
        ram = ", ".join(f"0x{r.base:x}-0x{r.end:x}" for r in phys.regions)
        raise BadInput(f"{path}: segment 0x{base:x}-0x{base + memsz:x} is outside RAM ({ram}; see -m)")
    if len(data) > memsz:
        raise BadInput(f"{path}: segment at 0x{base:x} has more file data than memory size")
    phys.write(base, data)


class Pl011:
    """The PL011's transmit side: UARTDR writes go to ``console`` (flushed at each newline),
    UARTFR reads as idle (TXFE|RXFE), every other register reads as zero and ignores writes."""

    READ_VALUES = {UARTFR: UARTFR_TXFE | UARTFR_RXFE}

    def __init__(self, console: BinaryIO) -> None:
        self.console = console

    def read(self, offset: int, size: int) -> int:
        return self.READ_VALUES.get(offset, 0)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == UARTDR:
            byte = value & 0xFF
            self.console.write(bytes((byte,)))
            if byte == 0x0A:
                self.console.flush()

    def flush(self) -> None:
        self.console.flush()


def _sign_extend(value: int, bits: int) -> int:
    sign = 1 << (bits - 1)
    return ((value & ((1 << bits) - 1)) ^ sign) - sign


class MinimalRunner:
    """One PE with RAM at :data:`RAM_BASE`, a PL011 and PSCI over HVC."""

    def __init__(self, image: Path, ram_size: int = DEFAULT_RAM_SIZE, console: BinaryIO | None = None):
        self.cpu = Cpu()
        try:
            self.cpu.phys.add_ram(RAM_BASE, ram_size)
        except MemoryError:
            raise BadInput(f"cannot allocate {ram_size >> 20} MiB of guest RAM") from None
        self.cpu.state.pc = load_elf(image, self.cpu.phys)  # Cpu() is in its reset state: EL1h, DAIF masked
        self.uart = Pl011(console if console is not None else sys.stdout.buffer)
        self.devices = [(PL011_BASE, PL011_SIZE, self.uart)]
        self.stop_requested = False
        self.exit_handlers: dict[int, Callable[[HypTrap], None]] = {
            ESR_ELx_EC_DABT_LOW: self.handle_dabt,
            ESR_ELx_EC_HVC64: self.handle_hvc,
        }
        self.psci_functions: dict[int, Callable[[], int]] = {
            PSCI_0_2_FN_PSCI_VERSION: lambda: PSCI_VERSION_1_1,
            PSCI_0_2_FN_SYSTEM_OFF: self.psci_system_off,
            PSCI_0_2_FN_SYSTEM_RESET: self.psci_system_reset,
        }

    @property
    def pc(self) -> int:
        return self.cpu.state.pc

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        """Ask the run loop to stop after the current chunk (a signal handler)."""
        self.stop_requested = True

    # -- the run loop ------------------------------------------------------------------------
    def run(self, max_insns: int | None = None, timeout: float | None = None) -> GuestExit:
        """Run until the guest powers off, resets, crashes, or a limit or stop request ends it."""
        cpu = self.cpu
        stop_handlers: dict[type, Callable[[Stop], None]] = {
            Budget: lambda stop: None,
            HypTrap: self.handle_exit,
            WaitForInterrupt: self.handle_wfi,
        }
        limit = None if max_insns is None else cpu.icount + max_insns
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                budget = CHUNK if limit is None else min(CHUNK, limit - cpu.icount)
                if budget <= 0:
                    raise GuestExit(ExitStatus.TIMEOUT, f"timeout: {max_insns} instructions executed, "
                                                        f"guest stopped at PC 0x{self.pc:x}")
                stop = cpu.run(budget)
                stop_handlers[type(stop)](stop)
                if self.stop_requested:
                    raise GuestExit(ExitStatus.INTERRUPTED, f"interrupted: guest PC 0x{self.pc:x}")
                if deadline is not None and time.monotonic() > deadline:
                    raise GuestExit(ExitStatus.TIMEOUT, f"timeout: {timeout:g} s elapsed, "
                                                        f"guest stopped at PC 0x{self.pc:x}")
        except GuestExit as done:
            return done
        except (UnsupportedFeature, NotImplementedError) as err:
            return GuestExit(ExitStatus.GUEST_CRASH,
                             f"guest crash: unsupported feature at PC 0x{self.pc:x}: {err}")
        finally:
            self.uart.flush()

    def handle_wfi(self, stop: Stop) -> None:
        raise GuestExit(ExitStatus.GUEST_CRASH,
                        f"guest halted in WFI with no interrupt source (PC 0x{self.pc:x})")

    def handle_exit(self, trap: HypTrap) -> None:
        """Serve an exception taken to EL2, by exception class."""
        self.exit_handlers.get(esr_ec(trap.esr), self.handle_unknown)(trap)

    def handle_unknown(self, trap: HypTrap) -> None:
        ec = esr_ec(trap.esr)
        self.crash(trap, f"unhandled exception to EL2: EC 0x{ec:02x} ({ec_name(ec)}), ESR 0x{trap.esr:x}")

    def crash(self, trap: HypTrap, what: str) -> NoReturn:
        raise GuestExit(ExitStatus.GUEST_CRASH,
                        f"guest crash: {what}, PC 0x{trap.elr:x}, address 0x{trap.far:x}")

    # -- MMIO (KVM: io_mem_abort, kvm_handle_mmio_return) -------------------------------------
    def handle_dabt(self, trap: HypTrap) -> None:
        """Emulate the load or store that faulted on a device, from ESR_EL2's ISS."""
        ipa = (trap.hpfar >> 4) << 12 | (trap.far & 0xFFF)
        found = next(((base, dev) for base, size, dev in self.devices if base <= ipa < base + size), None)
        iss = trap.esr
        if found is None:
            kind = "write" if iss & ESR_ELx_WNR else "read"
            self.crash(trap, f"data abort (EC 0x24 DABT_LOW) on a {kind} where there is no RAM or device")
        if not iss & ESR_ELx_ISV:
            self.crash(trap, "data abort (EC 0x24 DABT_LOW) without instruction syndrome (ISV=0)")
        base, device = found
        size = 1 << ((iss & ESR_ELx_SAS) >> ESR_ELx_SAS_SHIFT)
        srt = (iss & ESR_ELx_SRT_MASK) >> ESR_ELx_SRT_SHIFT
        x = self.cpu.state.x
        if iss & ESR_ELx_WNR:
            device.write(ipa - base, size, x[srt] & ((1 << (8 * size)) - 1))
        else:
            value = device.read(ipa - base, size)
            if iss & ESR_ELx_SSE:
                value = _sign_extend(value, 8 * size)
            x[ZR_WRITE if srt == 31 else srt] = value & (MASK64 if iss & ESR_ELx_SF else MASK32)
        self.cpu.state.pc = trap.elr + 4

    # -- PSCI over HVC (KVM: kvm_psci_call) ---------------------------------------------------
    def handle_hvc(self, trap: HypTrap) -> None:
        """Call the PSCI function named by W0; results in X0, X1-X3 cleared. PC is past the HVC."""
        x = self.cpu.state.x
        function = self.psci_functions.get(x[0] & MASK32, lambda: PSCI_RET_NOT_SUPPORTED)
        x[0:4] = [function(), 0, 0, 0]

    def psci_system_off(self) -> int:
        raise GuestExit(ExitStatus.POWER_OFF)

    def psci_system_reset(self) -> int:
        raise GuestExit(ExitStatus.RESET, f"guest requested PSCI SYSTEM_RESET (PC 0x{self.pc:x})")


# -- command line ----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", metavar="FILE", help="guest image: an AArch64 ELF")
    parser.add_argument("-kernel", metavar="FILE", help="guest image, QEMU spelling (same as FILE)")
    parser.add_argument("-m", metavar="SIZE", type=parse_size, default=DEFAULT_RAM_SIZE,
                        help="RAM size, QEMU syntax such as 64M or 1G (default 128M)")
    parser.add_argument("--max-insns", metavar="N", type=_positive(int),
                        help=f"stop with status {ExitStatus.TIMEOUT:d} after N instructions")
    parser.add_argument("--timeout", metavar="S", type=_positive(float),
                        help=f"stop with status {ExitStatus.TIMEOUT:d} after S seconds")
    parser.epilog = "exit status: " + ", ".join(f"{s.value} {s.name.lower().replace('_', ' ')}"
                                                for s in ExitStatus)


def _report(message: str) -> None:
    print(f"armvisor: {message}", file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    """Run one guest; returns the :class:`ExitStatus`."""
    if (args.file is None) == (args.kernel is None):
        _report("error: give the guest image once, as FILE or as -kernel FILE")
        return ExitStatus.BAD_INPUT
    try:
        runner = MinimalRunner(Path(args.file or args.kernel), args.m)
    except BadInput as err:
        _report(f"error: {err}")
        return ExitStatus.BAD_INPUT
    previous = signal.signal(signal.SIGINT, runner.request_stop)
    try:
        result = runner.run(args.max_insns, args.timeout)
    finally:
        signal.signal(signal.SIGINT, previous)
    if result.message:
        _report(result.message)
    return result.status
