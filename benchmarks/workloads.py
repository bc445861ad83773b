"""The benchmark guests: freestanding C (and one assembly file) in ``benchmarks/guests`` plus the
test guests' ``intloop.c``, built with the test guests' runtime (``tests/guests``: crt0.S, psci.S, uart.c, lib.c, link.ld,
guest.h) through :func:`armvisor.toolchain.build_elf`.

Every guest takes ``-DITERATIONS=N`` (the size of its work; ``0`` leaves only boot and the
final print, the baseline subtracted from QEMU's times) and prints one checksum line, so the
output of armvisor and QEMU can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from armvisor.toolchain import build_elf

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
GUESTS_DIR = BENCH_DIR / "guests"
RUNTIME_DIR = REPO / "tests" / "guests"
RUNTIME = [RUNTIME_DIR / name for name in ("crt0.S", "psci.S", "uart.c", "lib.c")]
LINK_SCRIPT = RUNTIME_DIR / "link.ld"
BUILD_DIR = BENCH_DIR / "build"


@dataclass(frozen=True)
class Workload:
    """A guest and its size (``ITERATIONS``) for a full run and for ``--quick``."""

    name: str
    source: Path
    iterations: int
    quick_iterations: int
    what: str
    qemu_scale_max: int = 4096  # how far QEMU's size may grow (see qemu.py)

    def size(self, quick: bool) -> int:
        return self.quick_iterations if quick else self.iterations


WORKLOADS = [
    Workload("intloop", RUNTIME_DIR / "intloop.c", 200_000, 10_000, "xorshift/multiply integer loop"),
    Workload("crc32", GUESTS_DIR / "crc32.c", 200, 10, "bitwise CRC-32 of 256 bytes"),
    Workload("sort", GUESTS_DIR / "sort.c", 200, 10, "quicksort + insertion sort of 128 int32"),
    Workload("format", GUESTS_DIR / "format.c", 2_500, 120, "printf-like formatting into a buffer"),
    Workload("memcpy", GUESTS_DIR / "memcpy.c", 4_000, 200, "1 KiB word copies + byte tails"),
    Workload("mmio", GUESTS_DIR / "mmio.c", 20_000, 1_000, "PL011 writes (2 MMIO exits per char)"),
    Workload("interp", GUESTS_DIR / "interp.c", 10_000, 500, "bytecode VM, switch dispatch"),
    # run once; QEMU's size stops at 3x: crt0's ADR reaches .rodata across at most 1 MiB of code
    Workload("cold", GUESTS_DIR / "cold.S", 16_384, 1_024, "straight-line code run once (4 insns/group)", 3),
]
BY_NAME = {w.name: w for w in WORKLOADS}
TRIVIAL = Workload("trivial", GUESTS_DIR / "trivial.c", 0, 0, "powers off at once (start-up)")


def build(workload: Workload, iterations: int) -> Path:
    """The guest ELF of ``workload`` with ``ITERATIONS=iterations`` (cached builds)."""
    out = BUILD_DIR / f"{workload.name}-{iterations}.elf"
    return build_elf([*RUNTIME, workload.source], out, link_script=LINK_SCRIPT,
                     cflags=[f"-DITERATIONS={iterations}"], include_dirs=[RUNTIME_DIR])
