#!/usr/bin/env python3
"""gdb ``stepi`` per second against armvisor's gdb stub, next to the same against QEMU's
(``qemu-system-aarch64 -M virt -cpu cortex-a57 -S -gdb``), on the same guest in one run.

    python3 benchmarks/gdb_stepi.py [--elf GUEST.elf] [--steps N] [--repeat R]

Both are driven by the shared harness's step tracer (gdb-multiarch in batch mode, registers read
after every step), so each figure is a whole gdb round trip per instruction: stepi plus the
register reads. Default guest: the harness's reference ``mmio_step.elf``. Best of R runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HARNESS = Path("/work/shared/harness")
DEFAULT_ELF = HARNESS / "reference" / "elf" / "mmio_step.elf"
TARGETS = {
    "armvisor": "armvisor run -S -gdb tcp:{host}:{port} {elf}",
    "qemu": "qemu-system-aarch64 -M virt -cpu cortex-a57 -nographic -net none -kernel {elf} -S -gdb tcp:{host}:{port}",
}


def steps_per_second(template: str, elf: Path, steps: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "trace.json")
        subprocess.run([sys.executable, str(HARNESS / "step_trace.py"), "--elf", str(elf), "--target-cmd", template,
                        "--steps", str(steps), "--step-timeout", "30", "--timeout", "600", "-q", "-o", str(out)],
                       cwd=HARNESS, timeout=700, check=False)
        end = json.loads(out.read_text())["end"]
    return float(end.get("steps_per_second") or 0.0), int(end.get("steps") or 0)


def measure(elf: Path, steps: int, repeat: int) -> dict[str, tuple[float, int] | None]:
    """Best (stepi/s, steps) of ``repeat`` runs per target; None for a target not installed."""
    return {name: max(steps_per_second(template, elf, steps) for _ in range(repeat))
            if shutil.which(template.split()[0]) else None
            for name, template in TARGETS.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--elf", type=Path, default=DEFAULT_ELF)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if shutil.which("gdb-multiarch") is None:
        print("gdb_stepi: needs gdb-multiarch", file=sys.stderr)
        return 1
    print(f"guest {args.elf.name}, up to {args.steps} stepi per run, best of {args.repeat}")
    for name, best in measure(args.elf, args.steps, args.repeat).items():
        print(f"{name:>9}: " + ("not installed" if best is None else f"{best[0]:8.1f} stepi/s  ({best[1]} steps)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
