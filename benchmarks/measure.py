#!/usr/bin/env python3
"""In-process measurements of armvisor: the guest runs on :class:`VirtMachine` and the
:class:`Runner` behind ``armvisor run`` (guest output captured), so machine set-up and Python
start-up are outside the timed part. Instruction counts are the vcpus' ``instructions``
(``Cpu.icount``), exact.

Also a worker for subprocesses (PyPy, callgrind), printing JSON on stdout:

    python3 benchmarks/measure.py [--quick] [--callgrind-marks] NAME...
    python3 benchmarks/measure.py --single-steps N

With ``--callgrind-marks`` each guest run is bracketed by ``os.getppid()`` and ``os.getpgrp()``,
which ``valgrind --tool=callgrind --zero-before=getppid --dump-before=getpgrp`` turns into one
profile dump per run, holding exactly the host instructions of that run.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import workloads

from armvisor.kvm import (
    KVM_EXIT_DEBUG,
    KVM_EXIT_MMIO,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
)
from armvisor.cli.main import GC_THRESHOLDS
from armvisor.cpu import emit
from armvisor.vmm.machine import ExitStatus, VirtMachine
from armvisor.vmm.runner import Runner

if hasattr(gc, "set_threshold"):  # measure the library as `armvisor run` configures CPython
    gc.set_threshold(*GC_THRESHOLDS)

CALLGRIND_ZERO = "getppid"  # libc functions nothing else in a run calls
CALLGRIND_DUMP = "getpgrp"


class BenchmarkError(RuntimeError):
    """A guest did not run to PSCI SYSTEM_OFF."""


@dataclass(frozen=True)
class GuestRun:
    name: str
    instructions: int
    seconds: float
    mmio_exits: int
    output: str

    @property
    def mips(self) -> float:
        return self.instructions / self.seconds / 1e6


def new_machine(elf: Path, translate: bool = True) -> tuple[VirtMachine, io.BytesIO]:
    """A machine for ``elf`` with its serial output captured. Earlier machines are collected
    first: each holds reference cycles and its whole guest RAM (128 MiB)."""
    gc.collect()
    serial = io.BytesIO()
    return VirtMachine(elf, serial=serial, translate=translate), serial


def run_guest(name: str, elf: Path, marks: bool = False, translate: bool = True) -> GuestRun:
    """Run ``elf`` to power-off; only :meth:`Runner.run` is timed. ``translate=False``: tier 0
    only (decoded instructions, no translated blocks)."""
    machine, serial = new_machine(elf, translate)
    emit.forget()  # each run starts as cold as in a new process
    runner = Runner(machine)
    if marks:
        os.getppid()
    start = time.perf_counter()
    stop = runner.run()
    seconds = time.perf_counter() - start
    if marks:
        os.getpgrp()
    if stop.status != ExitStatus.POWER_OFF:
        raise BenchmarkError(f"{name}: status {int(stop.status)} {stop.message}")
    mmio = sum(counts[KVM_EXIT_MMIO] for counts in runner.exit_counts.values())
    return GuestRun(name, sum(v.instructions for v in machine.vcpus), seconds, mmio,
                    serial.getvalue().decode(errors="replace"))


def best_run(name: str, elf: Path, repeat: int, translate: bool = True) -> GuestRun:
    """The fastest of ``repeat`` runs (each on a fresh machine)."""
    return min((run_guest(name, elf, translate=translate) for _ in range(repeat)), key=lambda r: r.seconds)


def single_steps(elf: Path, steps: int) -> tuple[int, float]:
    """(steps, seconds): ``Vcpu.run()`` with KVM_GUESTDBG_SINGLESTEP, one KVM_EXIT_DEBUG per
    instruction; MMIO and other exits on the way are served by the machine."""
    machine, _ = new_machine(elf)
    vcpu = machine.vcpus[0]
    vcpu.set_guest_debug(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP)
    done = 0
    start = time.perf_counter()
    while done < steps:
        run = vcpu.run()
        if run.exit_reason == KVM_EXIT_DEBUG:
            done += 1
        elif machine.handle_exit(vcpu, run) is not None:
            break
    return done, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(sorted(workloads.BY_NAME)))
    parser.add_argument("--quick", action="store_true", help="the reduced sizes")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--callgrind-marks", action="store_true")
    parser.add_argument("--single-steps", type=int, metavar="N",
                        help="instead: N single steps of intloop, printed as {steps, seconds}")
    args = parser.parse_args()
    if args.single_steps:
        workload = workloads.BY_NAME["intloop"]
        steps, seconds = single_steps(workloads.build(workload, workload.iterations), args.single_steps)
        json.dump({"steps": steps, "seconds": seconds}, sys.stdout)
        return 0
    unknown = sorted(set(args.names) - set(workloads.BY_NAME))
    if unknown or not args.names:
        parser.error(f"name the workloads ({', '.join(sorted(workloads.BY_NAME))}); unknown: {unknown}")
    elfs = {name: workloads.build(workloads.BY_NAME[name], workloads.BY_NAME[name].size(args.quick))
            for name in args.names}
    results = []
    for name, elf in elfs.items():
        if args.callgrind_marks:
            results.append(run_guest(name, elf, marks=True))
        else:
            results.append(best_run(name, elf, args.repeat))
    json.dump([asdict(r) for r in results], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
