#!/usr/bin/env python3
"""armvisor's benchmark suite: armvisor as it is today, next to QEMU on the same guests.

    python3 benchmarks/run.py [--quick] [--only NAME...] [--no-qemu] [--callgrind] [--record]

Not part of the pass/fail tests. What it measures:

* Guest MIPS per workload (``workloads.py``: guests built from ``benchmarks/guests``): guest
  instructions (the vcpus' exact ``instructions``) per second of ``Runner.run()`` on a
  ``VirtMachine`` in this process, best of N; machine set-up is timed apart, under start-up.
  The same under PyPy (``pypy3 benchmarks/measure.py`` with ``PYTHONPATH=src``) when installed.
* QEMU (``qemu-system-aarch64 -M virt -cpu cortex-a57 -nographic -kernel ELF``) on the same
  guests: loop time net of the guest at ``ITERATIONS=0`` (see ``qemu.py``), its MIPS and the
  ratio QEMU / armvisor; its output at armvisor's size must equal armvisor's.
* MMIO exits per second (the ``mmio`` guest: ``KVM_EXIT_MMIO`` round trips through
  ``Vcpu.run()`` and the PL011 model), single-steps per second (``Vcpu.run()`` with
  KVM_GUESTDBG_SINGLESTEP, one KVM_EXIT_DEBUG each), gdb ``stepi`` per second against
  armvisor's stub and QEMU's (``gdb_stepi.py``), start-up (wall time and peak RSS of
  ``armvisor run`` and of QEMU on a guest that powers off at once), peak RSS of this process.
* ``--callgrind``: host instructions per guest instruction, counted by
  ``valgrind --tool=callgrind`` over each guest run alone (reduced sizes): the noise-free figure.

``--quick`` runs reduced sizes once each (~10 s); ``--only`` picks workloads and/or the
sections ``singlestep``, ``gdb``, ``startup``; ``--record`` writes ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import math
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import gdb_stepi
import qemu
import report
import workloads
from measure import (
    CALLGRIND_DUMP,
    CALLGRIND_ZERO,
    BenchmarkError,
    GuestRun,
    best_run,
    run_guest,
    single_steps,
)
from processes import ProcessRun, best_of

from armvisor.vmm.machine import VirtMachine

BENCH_DIR = Path(__file__).resolve().parent
SECTIONS = ("singlestep", "gdb", "startup")
# issue 7's targets, for reading the tables
MIPS_TARGETS = {"intloop": ">= 15", "interp": ">= 5", "cold": ">= 1"}
CALLGRIND_CMD = ["valgrind", "--tool=callgrind", f"--zero-before={CALLGRIND_ZERO}", f"--dump-before={CALLGRIND_DUMP}"]


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of a full or a ``--quick`` run."""

    repeat: int
    qemu_target_seconds: float
    single_steps: int
    gdb_steps: int
    gdb_repeat: int
    startup_repeat: int


FULL = Plan(repeat=3, qemu_target_seconds=0.3, single_steps=30_000, gdb_steps=300, gdb_repeat=3, startup_repeat=5)
QUICK = Plan(repeat=1, qemu_target_seconds=0.05, single_steps=3_000, gdb_steps=50, gdb_repeat=1, startup_repeat=2)


@dataclass
class Results:
    cpython: dict[str, GuestRun] = field(default_factory=dict)
    tier0: dict[str, float] = field(default_factory=dict)  # CPython MIPS without translation
    baseline_insns: dict[str, int] = field(default_factory=dict)  # ITERATIONS=0
    pypy: dict[str, float] = field(default_factory=dict)
    pypy_exit_rate: float | None = None  # MMIO exits/s of the mmio guest under PyPy
    pypy_note: str = ""
    qemu_runs: dict[str, qemu.QemuResult] = field(default_factory=dict)
    qemu_note: str = ""
    callgrind: dict[str, float] = field(default_factory=dict)
    callgrind_note: str = "run with --callgrind"
    other: list[tuple[str, str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="reduced sizes, one run each")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=[*workloads.BY_NAME, *SECTIONS],
                        help=f"only these workloads / sections ({', '.join([*workloads.BY_NAME, *SECTIONS])})")
    parser.add_argument("--no-qemu", action="store_true", help="skip QEMU")
    parser.add_argument("--no-pypy", action="store_true", help="skip PyPy")
    parser.add_argument("--callgrind", action="store_true", help="host instructions per guest instruction")
    parser.add_argument("--record", action="store_true", help=f"write {report.RESULTS.name}")
    return parser.parse_args(argv)


# -- measurements ------------------------------------------------------------------------------
def measure_cpython(names: list[str], quick: bool, plan: Plan, results: Results) -> None:
    for name in names:
        workload = workloads.BY_NAME[name]
        elf = workloads.build(workload, workload.size(quick))
        results.cpython[name] = best_run(name, elf, plan.repeat)
        results.tier0[name] = best_run(name, elf, plan.repeat, translate=False).mips
        print(f"  {name}: {results.cpython[name].mips:.2f} MIPS (tier 0 only: {results.tier0[name]:.2f})",
              file=sys.stderr)


def pypy_version(pypy: str) -> str:
    script = "import sys, platform; print(platform.python_version(), '%d.%d.%d' % sys.pypy_version_info[:3])"
    out = subprocess.run([pypy, "-c", script],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    return f"PyPy {out[1]} (Python {out[0]})"


def measure_pypy(names: list[str], quick: bool, plan: Plan, results: Results) -> str:
    """PyPy MIPS from ``measure.py`` run under ``pypy3``; returns PyPy's description."""
    pypy = shutil.which("pypy3")
    if pypy is None:
        results.pypy_note = "not installed (Debian: apt-get install pypy3)"
        return "not installed"
    version = pypy_version(pypy)
    argv = [pypy, str(BENCH_DIR / "measure.py"), *(["--quick"] if quick else []), "--repeat", str(plan.repeat), *names]
    env = {**os.environ, "PYTHONPATH": str(workloads.REPO / "src")}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, check=False)
    if proc.returncode != 0:
        error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        hint = " (its packages: pypy3 -m pip install pyelftools pylibfdt capstone)" if "ModuleNotFound" in error else ""
        results.pypy_note = f"{version} cannot run armvisor: {error}{hint}"
    else:
        runs = json.loads(proc.stdout)
        results.pypy = {r["name"]: r["instructions"] / r["seconds"] / 1e6 for r in runs}
        results.pypy_exit_rate = next((r["mmio_exits"] / r["seconds"] for r in runs if r["name"] == "mmio"), None)
    return version


def measure_qemu(names: list[str], quick: bool, plan: Plan, results: Results) -> None:
    for name in names:
        workload = workloads.BY_NAME[name]
        results.baseline_insns[name] = run_guest(name, workloads.build(workload, 0)).instructions
        results.qemu_runs[name] = qemu.run(workload, workload.size(quick), plan.repeat, plan.qemu_target_seconds)
        print(f"  qemu {name}: x{results.qemu_runs[name].scale}", file=sys.stderr)


def measure_callgrind(names: list[str], results: Results) -> None:
    """Host instructions per guest instruction: each guest run (reduced size) of a
    ``measure.py --callgrind-marks`` worker is one callgrind dump."""
    if shutil.which("valgrind") is None:
        results.callgrind_note = "valgrind not installed (Debian: apt-get install valgrind)"
        return
    with tempfile.TemporaryDirectory(prefix="armvisor-callgrind-") as tmp:
        out = Path(tmp, "callgrind.out")
        argv = [*CALLGRIND_CMD, f"--callgrind-out-file={out}", sys.executable, str(BENCH_DIR / "measure.py"),
                "--quick", "--callgrind-marks", *names]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
        if proc.returncode != 0:
            results.callgrind_note = f"callgrind run failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
            return
        runs = json.loads(proc.stdout)
        dumps = sorted(Path(tmp).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        if len(dumps) != len(runs):
            results.callgrind_note = f"expected {len(runs)} callgrind dumps, found {len(dumps)}"
            return
        for run, dump in zip(runs, dumps):
            host = next(int(line.split()[1]) for line in dump.read_text().splitlines()
                        if line.startswith("summary:"))
            results.callgrind[run["name"]] = host / run["instructions"]
    results.callgrind_note = "reduced (--quick) sizes"


def measure_singlestep(plan: Plan, results: Results, pypy: bool) -> None:
    workload = workloads.BY_NAME["intloop"]
    steps, seconds = single_steps(workloads.build(workload, workload.iterations), plan.single_steps)
    results.other.append(("single-steps/s (Vcpu.run + KVM_GUESTDBG_SINGLESTEP, intloop)",
                          f"{steps / seconds:,.0f}", "-", ">= 1,000,000"))
    interpreter = shutil.which("pypy3") if pypy else None
    if interpreter is not None:
        proc = subprocess.run([interpreter, str(BENCH_DIR / "measure.py"), "--single-steps", str(plan.single_steps)],
                              capture_output=True, text=True, timeout=900, check=False,
                              env={**os.environ, "PYTHONPATH": str(workloads.REPO / "src")})
        if proc.returncode == 0:
            run = json.loads(proc.stdout)
            results.other.append(("  the same under PyPy", f"{run['steps'] / run['seconds']:,.0f}", "-",
                                  ">= 1,000,000"))


def measure_gdb(plan: Plan, results: Results) -> None:
    if shutil.which("gdb-multiarch") is None or not gdb_stepi.HARNESS.is_dir():
        results.other.append(("gdb stepi/s", "gdb-multiarch or the step harness missing", "-", "> QEMU"))
        return
    best = gdb_stepi.measure(gdb_stepi.DEFAULT_ELF, plan.gdb_steps, plan.gdb_repeat)
    cell = {name: "not installed" if b is None else f"{b[0]:,.0f}" for name, b in best.items()}
    results.other.append((f"gdb stepi/s ({gdb_stepi.DEFAULT_ELF.name}, {plan.gdb_steps} steps, regs read each)",
                          cell["armvisor"], cell["qemu"], "> QEMU"))


def armvisor_command() -> list[str]:
    """The ``armvisor`` console script of this Python (not a pyenv shim, which adds its own
    start-up), else ``python -c`` on the CLI's main."""
    script = Path(sys.executable).parent / "armvisor"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from armvisor.cli.main import main; sys.exit(main())"]


def measure_startup(plan: Plan, no_qemu: bool, results: Results) -> None:
    trivial = workloads.build(workloads.TRIVIAL, 0)
    ours = best_of([*armvisor_command(), "run", str(trivial)], plan.startup_repeat, 120)
    if ours.status != 0:
        raise BenchmarkError(f"armvisor run {trivial.name}: status {ours.status}")
    theirs: ProcessRun | None = None if no_qemu or qemu.QEMU is None else qemu.startup(plan.startup_repeat)
    setup = min(_machine_setup_seconds(trivial) for _ in range(plan.startup_repeat))
    results.other += [
        ("start-up: `armvisor run` trivial guest, wall (s)", f"{ours.seconds:.3f}",
         f"{theirs.seconds:.3f}" if theirs else "-", "-"),
        ("  of which VirtMachine set-up in-process (s)", f"{setup:.3f}", "-", "-"),
        ("peak RSS of that process (MiB)", mib(ours.max_rss_kib), mib(theirs.max_rss_kib) if theirs else "-", "-"),
    ]


def mib(kib: int | None) -> str:
    return "needs GNU time (Debian: time)" if kib is None else f"{kib / 1024:.1f}"


def _machine_setup_seconds(elf: Path) -> float:
    gc.collect()
    start = time.perf_counter()
    VirtMachine(elf, serial=io.BytesIO())
    return time.perf_counter() - start


# -- report ------------------------------------------------------------------------------------
def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def workload_table(names: list[str], results: Results) -> str:
    header = ["workload", "guest insns", "CPython MIPS", "CPython tier 0 only", "PyPy MIPS", "QEMU MIPS", "QEMU / armvisor",
              "host insns / guest insn", "output = QEMU", "target MIPS (issue 7)"]
    rows = []
    for name in names:
        run = results.cpython[name]
        q = results.qemu_runs.get(name)
        qemu_mips = q.mips(run.instructions - results.baseline_insns[name]) if q else None
        qemu_cell = fmt(qemu_mips, 0) + (" (noisy)" if q and q.loop_seconds < qemu.NOISE_FLOOR else "") if q else "-"
        ratio = f"{qemu_mips / run.mips:,.0f}x" if qemu_mips and not math.isnan(qemu_mips) else "-"
        same = "-" if q is None else ("yes" if q.same_size_output == run.output else "NO")
        rows.append([name, f"{run.instructions:,}", fmt(run.mips), fmt(results.tier0.get(name)),
                     fmt(results.pypy.get(name)), qemu_cell, ratio,
                     fmt(results.callgrind.get(name), 0), same, MIPS_TARGETS.get(name, "-")])
    return report.table(header, rows)


def mmio_rows(results: Results) -> list[tuple[str, str, str, str]]:
    run = results.cpython.get("mmio")
    if run is None:
        return []
    q = results.qemu_runs.get("mmio")
    baseline = run_guest("mmio", workloads.build(workloads.BY_NAME["mmio"], 0)).mmio_exits
    qemu_rate = f"{q.scale * (run.mmio_exits - baseline) / q.loop_seconds:,.0f} (accesses, TCG)" if q else "-"
    rows = [("MMIO exits/s (mmio guest: Vcpu.run + PL011, 2 per char)",
             f"{run.mmio_exits / run.seconds:,.0f}", qemu_rate, ">= 200,000")]
    if results.pypy_exit_rate is not None:
        rows.append(("  the same under PyPy", f"{results.pypy_exit_rate:,.0f}", "-", ">= 200,000"))
    return rows


def render(names: list[str], results: Results, header_lines: list[str], elapsed: float, quick: bool) -> str:
    parts = ["## Machine", "", *header_lines, ""]
    if names:
        parts += ["## Guest MIPS per workload", "", workload_table(names, results), ""]
        descriptions = [f"- `{n}`: {workloads.BY_NAME[n].what}, ITERATIONS={workloads.BY_NAME[n].size(quick):,}"
                        + (f"; QEMU ran {results.qemu_runs[n].scale}x that" if n in results.qemu_runs else "")
                        for n in names]
        parts += descriptions + [""]
        notes = [f"PyPy: {results.pypy_note}" if results.pypy_note else "",
                 f"QEMU: {results.qemu_note}" if results.qemu_note else "",
                 f"host insns / guest insn (callgrind): {results.callgrind_note}"]
        parts += [f"- {n}" for n in notes if n] + [""]
    if results.other:
        parts += ["## Exits, stepping, start-up, memory", "",
                  report.table(["figure", "armvisor", "QEMU", "target (issue 7)"], results.other), ""]
    parts += [f"- {n}" for n in results.notes]
    parts += [f"- suite wall time: {elapsed:.1f} s", ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    started = time.perf_counter()
    selected = args.only or [*workloads.BY_NAME, *SECTIONS]
    names = [n for n in workloads.BY_NAME if n in selected]
    results = Results()
    use_qemu = not args.no_qemu and qemu.QEMU is not None
    if not args.no_qemu and qemu.QEMU is None:
        results.qemu_note = "qemu-system-aarch64 not installed (Debian: apt-get install qemu-system-arm)"
    try:
        print("CPython...", file=sys.stderr)
        measure_cpython(names, args.quick, plan, results)
        pypy = "skipped" if args.no_pypy else measure_pypy(names, args.quick, plan, results) if names else "-"
        if use_qemu and names:
            print("QEMU...", file=sys.stderr)
            measure_qemu(names, args.quick, plan, results)
        results.other += mmio_rows(results)
        if args.callgrind and names:
            print("callgrind...", file=sys.stderr)
            measure_callgrind(names, results)
        if "singlestep" in selected:
            measure_singlestep(plan, results, not args.no_pypy)
        if "gdb" in selected:
            print("gdb...", file=sys.stderr)
            measure_gdb(plan, results)
        if "startup" in selected:
            measure_startup(plan, not use_qemu, results)
    except (BenchmarkError, RuntimeError, TimeoutError, subprocess.SubprocessError) as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1
    results.other.append(("peak RSS of this benchmark process, in-process runs (MiB)",
                          mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), "-", "-"))
    qemu_version = report.tool_version([qemu.QEMU, "--version"]) if qemu.QEMU else "not installed"
    command = "python3 benchmarks/run.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    text = render(names, results, [*report.machine_lines(pypy, qemu_version), f"- command: `{command.strip()}`"],
                  time.perf_counter() - started, args.quick)
    print(text)
    if args.record:
        print(f"wrote {report.write_results(command.strip(), text)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
