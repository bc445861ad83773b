"""The gdb server: one TCP listener, one gdb at a time, all-stop run control of every vcpu.

Run control uses the KVM-shaped API only, as QEMU's gdbstub does over KVM: before each slice
the vcpu gets ``set_guest_debug`` with the debugger's breakpoints (``USE_SW_BP``/``USE_HW``)
and, when stepping, ``SINGLESTEP`` plus armvisor's ``KVM_GUESTDBG_BLOCKIRQ`` (QEMU's
``SSTEP_NOIRQ``, the default; ``maint packet Qqemu.sstep=1`` lets interrupts in); then
``vcpu.run(max_insns=..., timeout=...)``. A ``KVM_EXIT_DEBUG`` is classified by its exception
class (:mod:`armvisor.gdbstub.guest_debug`); every other exit is completed by the machine's
``handle_exit``. Between slices the connection is polled for gdb's Ctrl-C (0x03).

Vcpus are run one after the other in slices (a vcpu asked to step first, then those asked to
continue); the first vcpu that stops stops them all. Each vcpu is one gdb thread, id = vcpu
index + 1. Resuming from a PC that holds one of our breakpoints steps that instruction with the
breakpoint lifted first (remove, step, reinsert).

Lifecycle, like QEMU's ``-gdb``: with ``start_stopped`` the machine waits for gdb; otherwise it
runs and stops when gdb connects. When gdb detaches (``D``) or its connection closes, the
debugger's breakpoints are removed, guest debug is switched off and the machine keeps running
to completion, still accepting a new gdb. When the guest finishes, gdb gets ``W<status>``
(``X0b`` for a crash) and :func:`serve_gdb` returns the machine's exit status; ``k``/``vKill``
end the run with status 0 (QEMU exits with 0 on kill).
"""

from __future__ import annotations

import errno
import select
import socket
import sys
from dataclasses import dataclass
from typing import Any, Optional, Union

from armvisor import kvm as K
from armvisor.gdbstub import commands, registers
from armvisor.gdbstub.breakpoints import DebugPoints
from armvisor.gdbstub.guest_debug import (
    STEP_DONE,
    DebugStop,
    classify_debug_exit,
    pc_of,
)
from armvisor.gdbstub.monitor import MonitorResult, run_monitor
from armvisor.gdbstub.rsp import (
    ConnectionClosed,
    Interrupt,
    Packet,
    RspChannel,
    expand_rle,
)

SLICE_INSNS = 20_000
SLICE_SECONDS = 0.25  # a vcpu sleeping in WFI waits this long before a Ctrl-C poll
STEP_SLICE_SECONDS = 0.5
KVM_GUESTDBG_BLOCKIRQ = getattr(K, "KVM_GUESTDBG_BLOCKIRQ", 0)
STATUS_BAD_INPUT = 1
STATUS_CRASH = 3
STATUS_KILLED = 0
GDB_SIGNAL_INT = 0x02
GDB_SIGNAL_TRAP = 0x05
GDB_SIGNAL_SEGV = 0x0B
MAX_ADDRESS = 1 << 64


@dataclass(frozen=True)
class Finished:
    """The guest is done: the machine's GuestStop (or a failed KVM_RUN)."""

    status: int
    message: str = ""


@dataclass(frozen=True)
class Stopped:
    """All vcpus stopped for gdb: the stop reply to send."""

    reply: bytes


class Detached:
    """gdb went away (``D`` or a closed connection); the machine runs on."""


Outcome = Optional[Union[Finished, Stopped]]


def machine_service(machine: Any, name: str) -> None:
    """Optional VirtMachine services: ``poll_devices`` (host-side device work between slices)
    and ``flush`` (buffered UART output, when the guest stops or ends)."""
    service = getattr(machine, name, None)
    if service is not None:
        service()


def run_slice(machine: Any, vcpu: K.Vcpu, seconds: float = SLICE_SECONDS) -> K.KvmRun | Finished | None:
    """One KVM_RUN slice. Returns the run record of a KVM_EXIT_DEBUG, a Finished guest, or None
    when the slice ended or a non-debug exit was completed by ``machine.handle_exit``.

    A slice that ends while the vcpu sleeps in WFI completes the WFI, as a signal does for
    KVM (an architecturally permitted spurious wake-up); guests wait in WFI loops."""
    machine_service(machine, "poll_devices")
    try:
        run = vcpu.run(max_insns=SLICE_INSNS, timeout=seconds)
    except K.KvmError as err:
        if err.errno == errno.EINTR:
            return None
        return Finished(STATUS_CRASH, f"vcpu {vcpu.vcpu_id}: KVM_RUN failed: {err}")
    if run.exit_reason == K.KVM_EXIT_DEBUG:
        return run
    stop = machine.handle_exit(vcpu, run)
    return None if stop is None else Finished(stop.status, stop.message)


class GdbSession:
    """One connected gdb: thread selection, breakpoints, packets and run control."""

    def __init__(self, machine: Any, sock: socket.socket) -> None:
        self.machine = machine
        self.channel = RspChannel(sock)
        bps = machine.vm.check_extension(K.KVM_CAP_GUEST_DEBUG_HW_BPS)
        wps = machine.vm.check_extension(K.KVM_CAP_GUEST_DEBUG_HW_WPS)
        self.points = DebugPoints(machine.read_memory, self._write_code, bps, wps)
        self.g_thread = 0
        self.c_thread = 0
        self.sstep_flags = commands.SSTEP_SUPPORTED
        self.last_stop_reply = b"T%02xthread:1;" % GDB_SIGNAL_TRAP

    def _write_code(self, addr: int, data: bytes) -> None:
        """Write guest RAM, then the I-cache maintenance QEMU's cpu_memory_rw_debug does."""
        self.machine.write_memory(addr, data)
        self.machine.vm.flush_icache_range(addr, len(data))

    # -- services for the command handlers -------------------------------------------------------
    @property
    def vcpus(self) -> list[K.Vcpu]:
        return self.machine.vcpus

    def vcpu(self, index: int) -> K.Vcpu:
        return self.machine.vcpus[index]

    def thread_index(self, tid: int) -> int | None:
        """gdb thread id -> vcpu index; -1 (all) stays -1, 0 (any) is the first vcpu."""
        if tid == -1:
            return -1
        if tid == 0:
            return 0
        return tid - 1 if tid <= len(self.vcpus) else None

    def read_memory(self, addr: int, length: int) -> bytes | None:
        """Up to ``length`` bytes (fewer where RAM ends), our BRKs hidden; None if none."""
        if addr + length > MAX_ADDRESS:
            length = max(0, MAX_ADDRESS - addr)
        try:
            data = self.machine.read_memory(addr, length)
        except ValueError:
            data = bytearray()
            for a in range(addr, addr + length):
                try:
                    data += self.machine.read_memory(a, 1)
                except ValueError:
                    break
        return self.points.shadow_read(addr, bytes(data)) if data or not length else None

    def write_memory(self, addr: int, data: bytes) -> bool:
        if addr + len(data) > MAX_ADDRESS:
            return False
        try:
            self.points.shadow_write(addr, data)
        except ValueError:
            return False
        return True

    def monitor(self, text: str) -> MonitorResult:
        return run_monitor(self, text)

    def console(self, text: str) -> None:
        """An ``O`` packet: text for gdb's console."""
        self.channel.send(b"O" + text.encode().hex().encode())

    def channel_no_ack(self) -> None:
        self.channel.ack_mode = False

    def after_reset(self) -> None:
        """The machine reloaded its image: put our software breakpoints back into it."""
        for addr in list(self.points.sw):
            self.points.sw.pop(addr)
            self.points.insert_sw(addr)

    # -- the packet loop -------------------------------------------------------------------------
    def serve(self) -> Finished | Detached:
        """Answer packets until the guest finishes, gdb kills it, or gdb goes away."""
        try:
            return self._serve()
        except ConnectionClosed:
            self.detach()
            return Detached()

    def _serve(self) -> Finished | Detached:
        while True:
            event = self.channel.receive()
            if not isinstance(event, Packet):
                continue  # Ctrl-C while stopped: nothing to interrupt
            payload = expand_rle(event.payload)
            if event.oversized or payload is None:
                self.channel.send(commands.E_MALFORMED)
                continue
            try:
                result = commands.dispatch(self, payload)
            except (K.KvmError, ValueError) as err:
                print(f"armvisor gdbstub: {payload[:40]!r}: {err}", file=sys.stderr)
                result = commands.E_INVALID
            if isinstance(result, bytes):
                self.channel.send(result)
            elif isinstance(result, commands.Resume):
                outcome = self.resume(result.actions)
                machine_service(self.machine, "flush")
                if isinstance(outcome, Finished):
                    self.report_finished(outcome)
                    return outcome
                self.channel.send(outcome.reply)
            elif isinstance(result, commands.Detach):
                self.channel.send(result.reply)
                self.detach()
                return Detached()
            else:
                if result.reply is not None:
                    self.channel.send(result.reply)
                return Finished(STATUS_KILLED, "killed by gdb")

    def report_finished(self, finished: Finished) -> None:
        if finished.message:
            self.console(finished.message.rstrip("\n") + "\n")
        if finished.status == STATUS_CRASH:
            self.channel.send(b"X%02x" % GDB_SIGNAL_SEGV)
        else:
            self.channel.send(b"W%02x" % (finished.status & 0xFF))

    def detach(self) -> None:
        """Take every trace of the debugger out of the guest: BRKs, debug registers, stepping."""
        self.points.clear()
        for vcpu in self.vcpus:
            vcpu.set_guest_debug(0)

    # -- run control -----------------------------------------------------------------------------
    def debug_control(self, step: bool) -> tuple[int, K.KvmGuestDebugArch | None]:
        control = self.points.control()
        if step:
            control |= K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_SINGLESTEP
            if self.sstep_flags & commands.SSTEP_NOIRQ:
                control |= KVM_GUESTDBG_BLOCKIRQ
        arch = self.points.arch() if control & K.KVM_GUESTDBG_USE_HW else None
        return control, arch

    def run_vcpu(self, index: int, step: bool) -> DebugStop | Finished | None:
        vcpu = self.vcpu(index)
        vcpu.set_guest_debug(*self.debug_control(step))
        result = run_slice(self.machine, vcpu, STEP_SLICE_SECONDS if step else SLICE_SECONDS)
        if isinstance(result, K.KvmRun):
            return classify_debug_exit(vcpu, result, self.points, step)
        return result

    def step_vcpu(self, index: int) -> DebugStop | Finished | Stopped:
        """Run one vcpu until its step (or another debug stop) completes; Ctrl-C interrupts."""
        while True:
            outcome = self.run_vcpu(index, step=True)
            if outcome is not None:
                return outcome
            if self.interrupted():
                return Stopped(self.stop_reply(index, GDB_SIGNAL_INT, ""))

    def step_over_breakpoint(self, index: int) -> DebugStop | Finished | Stopped | None:
        """If one of our breakpoints is at the vcpu's PC: lift it, step, put it back."""
        pc = pc_of(self.vcpu(index))
        lifted_sw = self.points.lift_sw(pc)
        slot = self.points.hw.index(pc & ~3) if pc & ~3 in self.points.hw else None
        if not lifted_sw and slot is None:
            return None
        if slot is not None:
            self.points.hw[slot] = None
        try:
            return self.step_vcpu(index)
        finally:
            if lifted_sw:
                self.points.restore_sw(pc)
            if slot is not None:
                self.points.hw[slot] = pc & ~3

    def resume(self, actions: dict[int, str]) -> Finished | Stopped:
        steppers = [n for n, a in actions.items() if a == "s"]
        order = steppers + [n for n, a in actions.items() if a == "c"]
        for n in order:
            outcome = self.step_over_breakpoint(n)
            if outcome is None or outcome is STEP_DONE and n not in steppers:
                continue
            return self.finish(n, outcome)
        while True:
            for n in order:
                outcome = self.run_vcpu(n, step=actions[n] == "s")
                if outcome is not None:
                    return self.finish(n, outcome)
            if self.interrupted():
                return Stopped(self.stop_reply(order[0], GDB_SIGNAL_INT, ""))

    def finish(self, index: int, outcome: DebugStop | Finished | Stopped) -> Finished | Stopped:
        if isinstance(outcome, DebugStop):
            return Stopped(self.stop_reply(index, GDB_SIGNAL_TRAP, outcome.stop_reply_fields()))
        return outcome

    def stop_reply(self, index: int, signal: int, fields: str) -> bytes:
        """``T<sig><reason><n>:<value>;...thread:<id>;``; the stopped vcpu becomes gdb's
        current thread. Every register is expedited (``n:value`` pairs, as gdbserver does for
        a few): gdb then needs no ``g`` packet after a stop. ``?`` later answers without them,
        as registers may have been written since."""
        self.g_thread = self.c_thread = index
        self.last_stop_reply = b"T%02x%sthread:%x;" % (signal, fields.encode(), index + 1)
        return self.last_stop_reply[:3] + registers.expedite(self.vcpu(index)) + self.last_stop_reply[3:]

    def interrupted(self) -> bool:
        """Poll the connection for Ctrl-C while the guest runs; other packets are out of order
        in all-stop mode and dropped."""
        while True:
            event = self.channel.receive(timeout=0)
            if event is None:
                return False
            if isinstance(event, Interrupt):
                return True
            print(f"armvisor gdbstub: packet while running ignored: {event.payload[:40]!r}", file=sys.stderr)


class GdbServer:
    """The listener and the machine's life between gdb connections."""

    def __init__(self, machine: Any, listener: socket.socket) -> None:
        self.machine = machine
        self.listener = listener

    def serve(self, start_stopped: bool) -> int:
        running = not start_stopped
        while True:
            if running:
                conn = self.run_until_connection()
                if isinstance(conn, Finished):
                    machine_service(self.machine, "flush")
                    if conn.message:
                        print(conn.message.rstrip("\n"), file=sys.stderr)
                    return conn.status
            else:
                conn, _ = self.listener.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                outcome = GdbSession(self.machine, conn).serve()
            finally:
                conn.close()
            if isinstance(outcome, Finished):
                return outcome.status
            running = True

    def run_until_connection(self) -> socket.socket | Finished:
        """Run every vcpu without guest debug until gdb connects (the VM then stops) or the
        guest finishes."""
        for vcpu in self.machine.vcpus:
            vcpu.set_guest_debug(0)
        while True:
            for vcpu in self.machine.vcpus:
                result = run_slice(self.machine, vcpu)
                if isinstance(result, Finished):
                    return result
            readable, _, _ = select.select([self.listener], [], [], 0)
            if readable:
                return self.listener.accept()[0]


def serve_gdb(machine: Any, host: str = "127.0.0.1", port: int = 1234, start_stopped: bool = True) -> int:
    """Run ``machine`` (a :class:`armvisor.vmm.machine.VirtMachine`) under a gdb stub listening
    on ``host:port`` until the guest finishes or gdb kills it; return the exit status."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((host or "127.0.0.1", port))
            listener.listen(1)
        except OSError as err:
            print(f"armvisor: cannot listen for gdb on {host}:{port}: {err.strerror}", file=sys.stderr)
            return STATUS_BAD_INPUT
        return GdbServer(machine, listener).serve(start_stopped)
    finally:
        listener.close()
