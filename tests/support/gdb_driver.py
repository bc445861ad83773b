"""Drive Debian's gdb-multiarch in batch mode against a gdb stub started as a subprocess.

``run_gdb(target_argv, commands)`` starts the target (a command list with ``{port}`` filled in),
waits until it listens, runs gdb with ``commands`` after ``target remote``, and returns gdb's
output together with the register dumps: the gdb command ``jregs`` (defined here, in gdb's
Python) prints ``REGS {...}`` with pc, x0-x30, sp and cpsr; ``jmem ADDR LEN`` prints ``MEM hex``.
Every process is started in its own session and killed by its process group in ``finally``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

GDB = "gdb-multiarch"
TESTS = Path(__file__).resolve().parents[1]

GDB_HELPERS = r'''
import gdb, json
REGS = ["pc"] + ["x%d" % i for i in range(31)] + ["sp", "cpsr"]
class JRegs(gdb.Command):
    def __init__(self): super().__init__("jregs", gdb.COMMAND_DATA)
    def invoke(self, arg, tty):
        f = gdb.selected_frame()
        print("REGS " + json.dumps({r: int(f.read_register(r)) & (2**64 - 1) for r in REGS}))
class JMem(gdb.Command):
    def __init__(self): super().__init__("jmem", gdb.COMMAND_DATA)
    def invoke(self, arg, tty):
        addr, length = [int(gdb.parse_and_eval(a)) for a in arg.split()]
        print("MEM " + bytes(gdb.selected_inferior().read_memory(addr, length)).hex())
JRegs(); JMem()
'''


@dataclass
class GdbResult:
    output: str
    target_output: bytes
    target_status: int | None
    regs: list[dict[str, int]] = field(default_factory=list)
    mems: list[bytes] = field(default_factory=list)
    target_stderr: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            next(f)
            if any(int(line.split()[1].rsplit(":", 1)[1], 16) == port and line.split()[3] == "0A" for line in f):
                return True
    return False


def kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()



def start_target(argv: list[str], port: int, stdout, stderr) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.Popen([a.replace("{port}", str(port)) for a in argv], stdout=stdout,
                            stderr=stderr, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while not listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            kill_group(proc)
            raise RuntimeError(f"target {argv} did not listen on {port}")
        time.sleep(0.02)
    return proc


def run_gdb(target_argv: list[str], elf: Path, commands: list[str], timeout: float = 60,
            interrupt_after: float | None = None) -> GdbResult:
    """``interrupt_after``: send gdb SIGINT (what Ctrl-C in its terminal does) after that many
    seconds; gdb then interrupts the target with the 0x03 byte."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        helpers = Path(tmp, "helpers.py")
        helpers.write_text(GDB_HELPERS)
        target_log = Path(tmp, "target.log")
        target_err = Path(tmp, "target.err")
        with target_log.open("wb") as log, target_err.open("wb") as err:
            target = start_target(target_argv, port, log, err)
        gdb = None
        try:
            argv = [GDB, "-nx", "-q", "-batch", "-x", str(helpers), "-ex", "set pagination off",
                    "-ex", "set confirm off", "-ex", f"file {elf}", "-ex", f"target remote 127.0.0.1:{port}"]
            for cmd in commands:
                argv += ["-ex", cmd]
            gdb = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
            if interrupt_after is not None:
                time.sleep(interrupt_after)
                gdb.send_signal(signal.SIGINT)
            out, _ = gdb.communicate(timeout=timeout)
            try:
                status = target.wait(timeout=10)
            except subprocess.TimeoutExpired:
                status = None
        finally:
            if gdb is not None:
                kill_group(gdb)
            kill_group(target)
        text = out.decode(errors="replace")
        regs = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("REGS ")]
        mems = [bytes.fromhex(line[4:]) for line in text.splitlines() if line.startswith("MEM ")]
        return GdbResult(text, target_log.read_bytes(), status, regs, mems, target_err.read_text(errors="replace"))
