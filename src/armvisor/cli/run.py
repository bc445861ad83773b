"""``armvisor run``: boot a guest on the ``virt`` machine (:mod:`armvisor.vmm`).

Options keep QEMU's spelling where QEMU has them (``-m``, ``-smp``, ``-M virt,gic-version=``,
``-kernel``, ``-initrd``, ``-append``, ``-dtb``, ``-serial``, ``-s``, ``-gdb``, ``-S``);
armvisor's own are long options. stdout carries only what the guest writes to its UART;
diagnostics go to stderr, one line each, prefixed ``armvisor:``.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

from armvisor.vmm import chardev
from armvisor.vmm.loaders import LoadError
from armvisor.vmm.machine import (
    DEFAULT_RAM_SIZE,
    ExitStatus,
    VirtMachine,
    report_to_stderr,
)
from armvisor.vmm.runner import Runner

NAME = "run"
HELP = "boot a bare-metal AArch64 guest or a Linux Image on the virt machine"

PAGE_SIZE = 4096
GDB_DEFAULT_PORT = 1234  # QEMU's -s
GDB_DEFAULT_HOST = "127.0.0.1"
TRACE_KINDS = ("exits", "insn", "blocks")
_SIZE_UNITS = {"": 20, "B": 0, "K": 10, "M": 20, "G": 30, "T": 40}
_GIC_VERSIONS = {"2": 2, "3": 3, "max": 3}


class BadInput(Exception):
    """An option that cannot be used; the message is the one-line explanation."""


def parse_size(text: str) -> int:
    """RAM size in QEMU's ``-m`` syntax: ``64M``, ``1G``, ``512`` (MiB by default)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([BKMGT]?)", text.strip(), re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (examples: 64M, 1G)")
    size = int(float(match[1]) * (1 << _SIZE_UNITS[match[2].upper()]))
    if size <= 0 or size % PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"RAM size {text!r} is not a positive multiple of 4K")
    return size


def parse_smp(text: str) -> int:
    """``-smp N`` or ``-smp cpus=N``."""
    match = re.fullmatch(r"(?:cpus=)?(\d+)", text.strip())
    if match is None or int(match[1]) < 1:
        raise argparse.ArgumentTypeError(f"invalid -smp {text!r} (expected a CPU count, e.g. 2)")
    return int(match[1])


def parse_machine(text: str) -> int:
    """``-M virt[,gic-version=2|3|max]``; returns the GIC version (QEMU's default: 2)."""
    name, *properties = text.split(",")
    if name != "virt":
        raise argparse.ArgumentTypeError(f"machine {name!r} is not supported (armvisor has virt)")
    gic = 2
    for prop in properties:
        key, _, value = prop.partition("=")
        if key != "gic-version" or value not in _GIC_VERSIONS:
            raise argparse.ArgumentTypeError(f"unsupported virt property {prop!r} "
                                             f"(armvisor knows gic-version=2|3|max)")
        gic = _GIC_VERSIONS[value]
    return gic


def parse_gdb(text: str) -> tuple[str, int]:
    """``-gdb tcp::PORT`` or ``-gdb tcp:HOST:PORT``."""
    match = re.fullmatch(r"tcp:([^:]*):(\d+)", text)
    if match is None or not 0 < int(match[2]) < 65536:
        raise argparse.ArgumentTypeError(f"invalid -gdb {text!r} (use tcp::PORT or tcp:HOST:PORT)")
    return match[1] or GDB_DEFAULT_HOST, int(match[2])


def parse_serial(text: str) -> str:
    try:
        return chardev.validate(text)
    except chardev.ChardevError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("file", nargs="?", metavar="FILE", help="guest image: ELF, Linux arm64 Image or raw binary")
    add("-kernel", metavar="FILE", help="guest image, QEMU spelling (same as FILE)")
    add("-m", metavar="SIZE", type=parse_size, default=DEFAULT_RAM_SIZE,
        help="RAM size, QEMU syntax such as 64M or 1G (default 128M)")
    add("-smp", metavar="N", type=parse_smp, default=1, help="number of vcpus (default 1)")
    add("-M", "-machine", dest="gic_version", metavar="virt[,gic-version=2|3]", type=parse_machine, default=2,
        help="the machine: virt, with GICv2 (default, as QEMU) or GICv3")
    add("-initrd", metavar="FILE", type=Path, help="initial ramdisk, named in /chosen")
    add("-append", metavar="CMDLINE", default="", help="kernel command line (/chosen bootargs)")
    add("-dtb", metavar="FILE", type=Path, help="use this device tree blob instead of the generated one")
    add("-serial", metavar="DEV", type=parse_serial, default="stdio",
        help="UART backend: stdio (default), null, file:PATH, tcp:HOST:PORT[,server[,wait=on]]")
    add("-s", dest="gdb_default", action="store_true", help="shorthand for -gdb tcp::1234")
    add("-gdb", metavar="tcp::PORT", type=parse_gdb, help="wait for gdb on tcp::PORT or tcp:HOST:PORT")
    add("-S", dest="start_stopped", action="store_true", help="with -s/-gdb: stop before the first instruction")
    add("--dump-dtb", metavar="FILE", type=Path, help="write the device tree blob, then run as usual")
    add("--strict-mmio", action="store_true",
        help="unassigned MMIO raises an external abort in the guest (default: reads 0, writes ignored)")
    add("--trace", choices=TRACE_KINDS,
        help="on stderr: every exit (exits), every instruction, disassembled (insn), or the "
             "Python source of every block and loop translated (blocks)")
    add("--stats", action="store_true", help="print exit statistics on stderr at the end")
    add("--no-translate", dest="translate", action="store_false",
        help="execute decoded instructions only, never translated blocks (slower; for comparison)")
    add("--max-insns", metavar="N", type=_positive(int),
        help=f"stop with status {ExitStatus.TIMEOUT:d} after N instructions")
    add("--timeout", metavar="S", type=_positive(float),
        help=f"stop with status {ExitStatus.TIMEOUT:d} after S seconds")
    parser.epilog = "exit status: " + ", ".join(f"{s.value} {s.name.lower().replace('_', ' ')}"
                                                for s in ExitStatus)


def _gdb_address(args: argparse.Namespace) -> tuple[str, int] | None:
    if args.gdb_default and args.gdb is not None:
        raise BadInput("give -s or -gdb, not both")
    if args.gdb_default:
        return GDB_DEFAULT_HOST, GDB_DEFAULT_PORT
    if args.gdb is None:
        if args.start_stopped:
            raise BadInput("-S waits for a debugger: add -s or -gdb tcp::PORT")
        return None
    return args.gdb


def _check_gdb_options(args: argparse.Namespace) -> None:
    ignored = [name for name, value in (("--trace", args.trace), ("--stats", args.stats),
                                        ("--max-insns", args.max_insns), ("--timeout", args.timeout)) if value]
    if ignored:
        raise BadInput(f"{', '.join(ignored)} cannot be combined with -s/-gdb (gdb drives the run)")


def _open_serial(spec: str, stack: ExitStack) -> tuple[BinaryIO, BinaryIO | None]:
    """The UART's output stream and, where the backend has one, its input."""
    try:
        return chardev.open_chardev(spec, stack, announce=report_to_stderr)
    except chardev.ChardevError as err:
        raise BadInput(str(err)) from None


def _log_device_errors() -> None:
    """Guest programming errors that devices log (QEMU's LOG_GUEST_ERROR) go to stderr."""
    logger = logging.getLogger("armvisor")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("armvisor: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def main(args: argparse.Namespace) -> int:
    """Run one guest; returns the :class:`ExitStatus`."""
    if (args.file is None) == (args.kernel is None):
        report_to_stderr("error: give the guest image once, as FILE or as -kernel FILE")
        return ExitStatus.BAD_INPUT
    _log_device_errors()
    if args.trace == "blocks":
        logging.getLogger("armvisor.translate").setLevel(logging.DEBUG)
    with ExitStack() as stack:
        try:
            gdb = _gdb_address(args)
            if gdb is not None:
                _check_gdb_options(args)
            output, serial_input = _open_serial(args.serial, stack)
            machine = VirtMachine(Path(args.file or args.kernel), ram_size=args.m, cpus=args.smp,
                                  gic_version=args.gic_version, initrd=args.initrd, append=args.append,
                                  dtb=args.dtb, serial=output, serial_input=serial_input,
                                  strict_mmio=args.strict_mmio, dump_dtb=args.dump_dtb,
                                  translate=args.translate)
        except (BadInput, LoadError) as err:
            report_to_stderr(f"error: {err}")
            return ExitStatus.BAD_INPUT
        if gdb is not None:
            from armvisor.gdbstub import serve_gdb

            return serve_gdb(machine, gdb[0], gdb[1], args.start_stopped)
        runner = Runner(machine, max_insns=args.max_insns, timeout=args.timeout, trace=args.trace,
                        stats=args.stats)
        previous = signal.signal(signal.SIGINT, runner.request_stop)
        try:
            stop = runner.run()
        finally:
            signal.signal(signal.SIGINT, previous)
    if stop.message:
        report_to_stderr(stop.message)
    return stop.status
