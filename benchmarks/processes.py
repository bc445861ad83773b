"""Timed child processes: wall time and peak RSS (``wait4``'s rusage) of one command, killed by
pid (its whole process group) when it overruns its timeout or anything goes wrong."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessRun:
    status: int
    seconds: float
    max_rss_kib: int
    output: str


def run_timed(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> ProcessRun:
    """Run ``argv`` (stdin from /dev/null, stdout to a file so large guest output never blocks);
    raises ``TimeoutError`` after ``timeout`` seconds."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL,
                                start_new_session=True, env=env)
        timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, wait_status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(wait_status)
        finally:
            timer.cancel()
            if proc.returncode is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.returncode == -signal.SIGKILL:
            raise TimeoutError(f"{Path(argv[0]).name} ran over {timeout:g} s")
        out.seek(0)
        return ProcessRun(proc.returncode, seconds, usage.ru_maxrss, out.read().decode(errors="replace"))


def best_of(argv: list[str], repeat: int, timeout: float) -> ProcessRun:
    """The fastest of ``repeat`` runs."""
    return min((run_timed(argv, timeout) for _ in range(repeat)), key=lambda r: r.seconds)
