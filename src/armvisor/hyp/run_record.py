"""``struct kvm_run``: the record a vcpu hands back from ``run()``, with the C field names.

Only the union members arm64 uses are modelled; they are separate objects so that a stale
member keeps its old value across exits exactly as the C union's bytes would for the fields
that share no storage (e.g. ``debug.arch.far`` is only written for watchpoints).
"""

from __future__ import annotations


class KvmMmio:
    """``run->mmio``: phys_addr, data[8] (bytes as in guest memory), len, is_write."""

    __slots__ = ("phys_addr", "data", "len", "is_write")

    def __init__(self) -> None:
        self.phys_addr = 0
        self.data = bytearray(8)
        self.len = 0
        self.is_write = 0


class KvmDebugExitArch:
    """``struct kvm_debug_exit_arch``: hsr (ESR[31:0]), hsr_high (ESR[63:32]), far."""

    __slots__ = ("hsr", "hsr_high", "far")

    def __init__(self) -> None:
        self.hsr = 0
        self.hsr_high = 0
        self.far = 0


class KvmDebug:
    __slots__ = ("arch",)

    def __init__(self) -> None:
        self.arch = KvmDebugExitArch()


class KvmSystemEvent:
    """``run->system_event``: type, ndata, data[16] (``flags`` is the old name of data[0])."""

    __slots__ = ("type", "ndata", "data")

    def __init__(self) -> None:
        self.type = 0
        self.ndata = 0
        self.data = [0] * 16

    @property
    def flags(self) -> int:
        return self.data[0]


class KvmArmNisv:
    """``run->arm_nisv``: esr_iss, fault_ipa."""

    __slots__ = ("esr_iss", "fault_ipa")

    def __init__(self) -> None:
        self.esr_iss = 0
        self.fault_ipa = 0


class KvmHypercall:
    """``run->hypercall``: nr, args[6], ret, flags."""

    __slots__ = ("nr", "args", "ret", "flags")

    def __init__(self) -> None:
        self.nr = 0
        self.args = [0] * 6
        self.ret = 0
        self.flags = 0


class KvmFailEntry:
    __slots__ = ("hardware_entry_failure_reason", "cpu")

    def __init__(self) -> None:
        self.hardware_entry_failure_reason = 0
        self.cpu = 0


class KvmInternal:
    __slots__ = ("suberror", "ndata", "data")

    def __init__(self) -> None:
        self.suberror = 0
        self.ndata = 0
        self.data = [0] * 16


class KvmRun:
    """The vcpu's ``struct kvm_run``."""

    __slots__ = ("request_interrupt_window", "immediate_exit", "exit_reason",
                 "ready_for_interrupt_injection", "if_flag", "flags", "mmio", "debug",
                 "system_event", "arm_nisv", "hypercall", "fail_entry", "internal")

    def __init__(self) -> None:
        self.request_interrupt_window = 0
        self.immediate_exit = 0
        self.exit_reason = 0
        self.ready_for_interrupt_injection = 0
        self.if_flag = 0
        self.flags = 0
        self.mmio = KvmMmio()
        self.debug = KvmDebug()
        self.system_event = KvmSystemEvent()
        self.arm_nisv = KvmArmNisv()
        self.hypercall = KvmHypercall()
        self.fail_entry = KvmFailEntry()
        self.internal = KvmInternal()

    def __repr__(self) -> str:
        return f"KvmRun(exit_reason={self.exit_reason}, flags={self.flags})"
