"""Timed child processes: wall time and peak RSS of one command, killed by pid (its whole process
group) when it overruns its timeout or anything goes wrong.

Peak RSS comes from GNU ``time -f %M``: Linux carries a process's RSS high-water mark across
``fork`` and ``exec`` (``setmax_mm_hiwater_rss`` in ``exec_mmap``), so the ``ru_maxrss`` of a child
of this (large) process would report this process's size; ``time`` is small, and forks the
command from itself."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

GNU_TIME = "/usr/bin/time"


@dataclass(frozen=True)
class ProcessRun:
    status: int
    seconds: float
    max_rss_kib: int | None  # None without GNU time (Debian package ``time``)
    output: str


def run_timed(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> ProcessRun:
    """Run ``argv`` (stdin from /dev/null, stdout to a file so large guest output never blocks);
    raises ``TimeoutError`` after ``timeout`` seconds."""
    gnu_time = shutil.which(GNU_TIME) is not None
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rss:
        command = [GNU_TIME, "-f", "%M", "-o", rss.name, *argv] if gnu_time else argv
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL,
                                start_new_session=True, env=env)
        timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, wait_status = os.waitpid(proc.pid, 0)
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
        max_rss = int(rss.read().split()[-1]) if gnu_time else None
        return ProcessRun(proc.returncode, seconds, max_rss, out.read().decode(errors="replace"))


def best_of(argv: list[str], repeat: int, timeout: float) -> ProcessRun:
    """The fastest of ``repeat`` runs."""
    return min((run_timed(argv, timeout) for _ in range(repeat)), key=lambda r: r.seconds)
