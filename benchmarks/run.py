#!/usr/bin/env python3
"""Guest MIPS of armvisor on the integer-loop guest (tests/guests/intloop.c).

    python3 benchmarks/run.py [--iterations N] [--repeat R]

armvisor runs in this process (the runner behind ``armvisor run``, guest output discarded);
MIPS is guest instructions (``Cpu.icount``) per second of wall time, best of R runs. When
``qemu-system-aarch64`` is installed, QEMU runs the same ELF for comparison; its time is the
wall time of the whole process, shown next to a run of the guest with no iterations (QEMU's
start-up, which dominates unless N is large). QEMU's MIPS uses armvisor's instruction count, as
both execute the same code.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from guests import build_guest  # noqa: E402

from armvisor.cli.run import ExitStatus, MinimalRunner  # noqa: E402

QEMU = shutil.which("qemu-system-aarch64")
QEMU_VIRT = ["-M", "virt", "-cpu", "cortex-a57", "-display", "none", "-serial", "stdio",
             "-monitor", "none", "-net", "none", "-no-reboot", "-kernel"]


def time_armvisor(elf: Path) -> tuple[int, float]:
    """(guest instructions, seconds) of one run to power-off."""
    runner = MinimalRunner(elf, console=io.BytesIO())
    start = time.perf_counter()
    result = runner.run()
    seconds = time.perf_counter() - start
    if result.status != ExitStatus.POWER_OFF:
        raise SystemExit(f"armvisor: {elf.name} ended with status {result.status:d}: {result.message}")
    return runner.cpu.icount, seconds


def time_qemu(elf: Path) -> float:
    """Wall time of a QEMU process running ``elf`` to power-off."""
    start = time.perf_counter()
    proc = subprocess.Popen([QEMU, *QEMU_VIRT, str(elf)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        status = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if status != 0:
        raise SystemExit(f"qemu: {elf.name} ended with status {status}")
    return time.perf_counter() - start


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=200_000, help="loop iterations of the guest")
    parser.add_argument("--repeat", type=int, default=3, help="runs per target; the best counts")
    args = parser.parse_args()

    elf = build_guest("intloop", {"ITERATIONS": args.iterations})
    runs = [time_armvisor(elf) for _ in range(args.repeat)]
    icount, seconds = runs[0][0], min(s for _, s in runs)
    rows = [("target", "guest instructions", "wall time (s)", "MIPS"),
            ("armvisor", f"{icount:,}", f"{seconds:.3f}", f"{icount / seconds / 1e6:.2f}")]
    if QEMU is not None:
        qemu = min(time_qemu(elf) for _ in range(args.repeat))
        startup = min(time_qemu(build_guest("intloop", {"ITERATIONS": 0})) for _ in range(args.repeat))
        rows += [("qemu (whole process)", f"{icount:,}", f"{qemu:.3f}", f"{icount / qemu / 1e6:.2f}"),
                 ("qemu start-up (0 iterations)", "-", f"{startup:.3f}", "-")]
    print(f"intloop guest, {args.iterations:,} iterations, best of {args.repeat}")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
