"""The results as Markdown: printed by ``run.py`` and, with ``--record``, written to
``benchmarks/RESULTS.md`` with the machine, the Python versions and the date."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, columns padded for reading as plain text; numbers right-aligned."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    align = ["-" * (w - 1) + ":" if i else "-" * w for i, w in enumerate(widths)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).rjust(w) if i else str(c).ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    return "\n".join([line(header), "| " + " | ".join(align) + " |", *(line(r) for r in rows)])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def tool_version(argv: list[str]) -> str:
    """First line of a tool's version output, or "not installed"."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


def machine_lines(pypy: str, qemu: str) -> list[str]:
    return [
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}, {platform.system()} {platform.release()}",
        f"- CPython: {platform.python_version()} ({platform.python_implementation()})",
        f"- PyPy: {pypy}",
        f"- QEMU: {qemu}",
    ]


def write_results(command: str, body: str) -> Path:
    RESULTS.write_text(f"# armvisor benchmark results\n\nRecorded by `{command}`; see `benchmarks/run.py` for "
                       f"what each figure means.\n\n{body}\n")
    return RESULTS
