"""The issue's key proof: ``reference/elf/mmio_step.elf`` single-stepped under armvisor through
real gdb equals QEMU's reference trace state by state (the shared harness README's rules: only
the registers holding properties of the modelled CPU, x19-x23, x25 and x26, are ignored)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.shared import HARNESS

ELF = HARNESS / "reference" / "elf" / "mmio_step.elf"
REFERENCE = HARNESS / "reference" / "mmio_step.qemu.json"
CPU_MODEL_REGS = "x19,x20,x21,x22,x23,x25,x26"

pytestmark = pytest.mark.skipif(not (ELF.exists() and shutil.which("gdb-multiarch")),
                                reason="needs the shared harness beside the checkout and gdb-multiarch")


def test_mmio_step_trace_equals_qemu(tmp_path: Path) -> None:
    trace = tmp_path / "mmio_step.armvisor.json"
    subprocess.run([sys.executable, str(HARNESS / "step_trace.py"), "--elf", str(ELF), "--label", "armvisor",
                    "--target-cmd", f"{sys.executable} -m armvisor.cli.main run -S -gdb tcp:{{host}}:{{port}} {{elf}}", "--timeout", "240",
                    "--step-timeout", "20", "-q", "-o", str(trace)], cwd=HARNESS, timeout=300, check=False)
    result = subprocess.run([sys.executable, str(HARNESS / "compare_traces.py"), str(REFERENCE), str(trace),
                             "--ignore", CPU_MODEL_REGS], cwd=HARNESS, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("MATCH") or "\nMATCH" in result.stdout
