"""``monitor`` commands (gdb's ``qRcmd``), one table entry each, like QEMU's HMP commands
reachable through its gdbstub.

* ``monitor exits``: each vcpu's exit statistics (``Vcpu.stat``, KVM's per-vcpu counters);
* ``monitor reset``: the machine and its vcpus back to their boot state (``machine.reset()``);
  the debugger's breakpoints are written into the fresh image again;
* ``monitor trace on|off``: one stderr line per KVM exit (``Vm.trace``, KVM's kvm_exit
  tracepoint).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from armvisor.arch.esr import esr_ec

if TYPE_CHECKING:
    from armvisor.gdbstub.server import GdbSession

MonitorResult = tuple[str, bool]  # (console output, success)


def _exits(session: GdbSession, args: list[str]) -> MonitorResult:
    if args:
        return "usage: monitor exits\n", False
    lines = []
    for vcpu in session.vcpus:
        stats = " ".join(f"{name}={count}" for name, count in sorted(vcpu.stat.items()))
        lines.append(f"vcpu {vcpu.vcpu_id}: {stats or 'no exits'}\n")
    return "".join(lines), True


def _reset(session: GdbSession, args: list[str]) -> MonitorResult:
    if args:
        return "usage: monitor reset\n", False
    reset = getattr(session.machine, "reset", None)
    if reset is None:
        return "this machine cannot be reset\n", False
    reset()
    session.after_reset()
    return "machine reset\n", True


def trace_exit(event: str, vcpu, detail) -> None:
    """Vm.trace callback: the kvm_exit events, with the exception class and the PC."""
    if event == "kvm_exit" and detail is not None:
        esr = getattr(detail, "esr", 0)
        print(f"kvm_exit vcpu={vcpu.vcpu_id} ec=0x{esr_ec(esr):02x} esr=0x{esr:08x}", file=sys.stderr)


def _trace(session: GdbSession, args: list[str]) -> MonitorResult:
    if args not in (["on"], ["off"]):
        return "usage: monitor trace on|off\n", False
    vm = session.machine.vm
    vm.trace = trace_exit if args == ["on"] else None
    return f"trace {args[0]}\n", True


def _help(session: GdbSession, args: list[str]) -> MonitorResult:
    return "".join(f"{name:<14} {doc}\n" for name, (_, doc) in MONITOR_COMMANDS.items()), True


MONITOR_COMMANDS: dict[str, tuple[Callable[["GdbSession", list[str]], MonitorResult], str]] = {
    "exits": (_exits, "exit statistics of every vcpu"),
    "reset": (_reset, "reset the machine to its boot state"),
    "trace": (_trace, "on|off: print every KVM exit on stderr"),
    "help": (_help, "this list"),
}


def run_monitor(session: GdbSession, text: str) -> MonitorResult:
    words = text.split()
    if not words:
        return _help(session, [])
    entry = MONITOR_COMMANDS.get(words[0])
    if entry is None:
        return f"unknown monitor command {words[0]!r} (try 'monitor help')\n", False
    return entry[0](session, words[1:])
