"""The benchmark suite (``benchmarks/run.py``) still runs end to end, in a much reduced mode:
two workloads at their quick sizes, QEMU included when installed (its output for the same ELF
must match armvisor's), no PyPy, no gdb. Figures are not checked, only that each is produced."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_suite_runs_in_quick_mode() -> None:
    argv = [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--no-pypy",
            "--only", "intloop", "mmio", "singlestep", "startup"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in proc.stdout.splitlines() if line.startswith("| ")}
    header = next(line for line in proc.stdout.splitlines() if line.startswith("| workload"))
    column = {c.strip(): i - 2 for i, c in enumerate(header.split("|"))}
    for name in ("intloop", "mmio"):
        assert float(rows[name][column["CPython MIPS"]]) > 0, rows[name]
        assert float(rows[name][column["CPython tier 0 only"]]) > 0, rows[name]
        if shutil.which("qemu-system-aarch64"):
            assert rows[name][column["output = QEMU"]] == "yes", f"{name}: armvisor's output differs from QEMU's"
    assert any(key.startswith("MMIO exits/s") for key in rows)
    assert any(key.startswith("single-steps/s") for key in rows)
    assert any(key.startswith("start-up") for key in rows)
