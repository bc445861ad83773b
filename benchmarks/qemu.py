"""The same guests under QEMU (``qemu-system-aarch64 -M virt -cpu cortex-a57 -nographic
-kernel ELF``), timed as whole processes.

QEMU's time for a workload's loop is the wall time of a run at ``k`` times the workload's size
minus that of the same guest with ``ITERATIONS=0`` (its start-up, boot and final print), ``k``
grown until the difference is well above start-up noise. The instructions of that difference
are armvisor's exact count for the workload minus its count for ``ITERATIONS=0``, times ``k``
(the guests' work is linear in ``ITERATIONS``).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass

import workloads
from processes import ProcessRun, best_of

QEMU = shutil.which("qemu-system-aarch64")
QEMU_ARGS = ["-M", "virt", "-cpu", "cortex-a57", "-nographic", "-net", "none", "-no-reboot", "-kernel"]
TIMEOUT = 120.0
NOISE_FLOOR = 0.02  # seconds of loop time below which a QEMU figure is start-up noise


@dataclass(frozen=True)
class QemuResult:
    scale: int  # k: QEMU ran k times the workload's ITERATIONS
    loop_seconds: float  # time of k x the workload beyond the ITERATIONS=0 run
    baseline: ProcessRun  # ITERATIONS=0
    same_size_output: str  # QEMU's output for armvisor's exact ELF

    def mips(self, loop_instructions: int) -> float:
        """MIPS for ``loop_instructions`` (armvisor's count of one workload's loop)."""
        return self.scale * loop_instructions / self.loop_seconds / 1e6 if self.loop_seconds > 0 else math.nan


def run(workload: workloads.Workload, size: int, repeat: int, target_seconds: float) -> QemuResult:
    """Time ``workload`` at ``size`` under QEMU (see the module docstring)."""
    def timed(iterations: int, times: int) -> ProcessRun:
        result = best_of([QEMU, *QEMU_ARGS, str(workloads.build(workload, iterations))], times, TIMEOUT)
        if result.status != 0:
            raise RuntimeError(f"qemu: {workload.name} ITERATIONS={iterations} ended with status {result.status}")
        return result

    baseline = timed(0, repeat)
    same = timed(size, 1)
    scale = 1
    loop = same.seconds - baseline.seconds
    while loop < target_seconds and scale < workload.qemu_scale_max:
        grow = target_seconds / max(loop, NOISE_FLOOR / 4)
        scale = min(workload.qemu_scale_max, max(2 * scale, math.ceil(scale * grow)))
        loop = timed(size * scale, 1).seconds - baseline.seconds
    if scale > 1:
        loop = timed(size * scale, repeat).seconds - baseline.seconds
    return QemuResult(scale, loop, baseline, same.output)


def startup(repeat: int) -> ProcessRun:
    """QEMU running the trivial guest (power-off at once)."""
    return best_of([QEMU, *QEMU_ARGS, str(workloads.build(workloads.TRIVIAL, 0))], repeat, TIMEOUT)
