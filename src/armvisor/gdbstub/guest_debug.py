"""What a ``KVM_EXIT_DEBUG`` means to the debugger, decided by the exception class in
``run->debug.arch.hsr`` as QEMU's ``kvm_arm_handle_debug`` (target/arm/kvm64.c) does, and the
delivery to the guest of debug exceptions that are not the debugger's.

* software step (EC 0x32/0x33) while stepping: the step is done (PC = next instruction);
  while not stepping it is stale, logged and ignored ("guest single-step while debugging
  unsupported" in QEMU);
* BRK (EC 0x3C): the debugger's when one of its breakpoints is at the PC, else the guest's own;
* hardware breakpoint (EC 0x30/0x31): the debugger's when it has one at the PC;
* watchpoint (EC 0x34/0x35): the debugger's watchpoint whose range holds ``debug.arch.far``.

Anything else is re-injected: exception entry to EL1 emulated through ONE_REG (ESR_EL1 = hsr
with the current-EL class when the guest was at EL1, FAR_EL1 = far for watchpoints,
ELR_EL1/SPSR_EL1, PSTATE = EL1h with DAIF masked, PC = the VBAR_EL1 synchronous vector).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from armvisor import kvm as K
from armvisor.arch import esr as E
from armvisor.arch import sysregs
from armvisor.arch.pstate import PSR_DAIF_MASK, PSR_MODE_MASK, PSR_MODE_EL1h
from armvisor.arch.sysreg_encoding import sys_reg_fields
from armvisor.arch.vectors import vector_group
from armvisor.gdbstub.breakpoints import WATCH_KINDS, DebugPoints

ESR_EL1 = K.arm64_sys_reg(*sys_reg_fields(sysregs.ESR_EL1))
FAR_EL1 = K.arm64_sys_reg(*sys_reg_fields(sysregs.FAR_EL1))
VBAR_EL1 = K.arm64_sys_reg(*sys_reg_fields(sysregs.VBAR_EL1))
SPSR_EL1 = K.arm64_core_reg(K.KVM_REG_ARM_CORE_SPSR)
VBAR_ALIGN_MASK = ~0x7FF
# Vector offsets of a synchronous exception to EL1 (Arm ARM D1.10.2).
# Debug classes with a "lower EL" and a "current EL" form (EC and EC + 1).
LOWER_TO_CURRENT = frozenset((E.ESR_ELx_EC_BREAKPT_LOW, E.ESR_ELx_EC_SOFTSTP_LOW, E.ESR_ELx_EC_WATCHPT_LOW))
WATCHPOINT_CLASSES = frozenset((E.ESR_ELx_EC_WATCHPT_LOW, E.ESR_ELx_EC_WATCHPT_CUR))


@dataclass(frozen=True)
class DebugStop:
    """Why the debugger stops a vcpu: ``reason`` is a stop-reply key (``swbreak``, ``hwbreak``,
    ``watch``, ``rwatch``, ``awatch``) or "" for a completed step; ``address`` for watchpoints."""

    reason: str
    address: int | None = None

    def stop_reply_fields(self) -> str:
        if not self.reason:
            return ""
        return f"{self.reason}:{'' if self.address is None else f'{self.address:x}'};"


STEP_DONE = DebugStop("")


def pc_of(vcpu: K.Vcpu) -> int:
    return vcpu.get_one_reg(K.KVM_REG_ARM64_PC)


def _softstep(vcpu: K.Vcpu, run: K.KvmRun, points: DebugPoints, stepping: bool) -> DebugStop | None:
    if stepping:
        return STEP_DONE
    print(f"armvisor gdbstub: vcpu {vcpu.vcpu_id}: guest single-step while debugging unsupported "
          f"(pc 0x{pc_of(vcpu):x}), ignored", file=sys.stderr)
    return None


def _brk(vcpu: K.Vcpu, run: K.KvmRun, points: DebugPoints, stepping: bool) -> DebugStop | None:
    return DebugStop("swbreak") if pc_of(vcpu) in points.sw else _reinject(vcpu, run, stepping)


def _breakpoint(vcpu: K.Vcpu, run: K.KvmRun, points: DebugPoints, stepping: bool) -> DebugStop | None:
    return DebugStop("hwbreak") if pc_of(vcpu) & ~3 in points.hw else _reinject(vcpu, run, stepping)


def _watchpoint(vcpu: K.Vcpu, run: K.KvmRun, points: DebugPoints, stepping: bool) -> DebugStop | None:
    far = run.debug.arch.far
    wp = points.watchpoint_at(far)
    if wp is None:
        return _reinject(vcpu, run, stepping)
    return DebugStop(WATCH_KINDS[wp.kind][1], far if wp.contains(far) else wp.addr)


def _other(vcpu: K.Vcpu, run: K.KvmRun, points: DebugPoints, stepping: bool) -> DebugStop | None:
    return _reinject(vcpu, run, stepping)


DEBUG_EXIT_HANDLERS = {
    E.ESR_ELx_EC_SOFTSTP_LOW: _softstep,
    E.ESR_ELx_EC_SOFTSTP_CUR: _softstep,
    E.ESR_ELx_EC_BRK64: _brk,
    E.ESR_ELx_EC_BREAKPT_LOW: _breakpoint,
    E.ESR_ELx_EC_BREAKPT_CUR: _breakpoint,
    E.ESR_ELx_EC_WATCHPT_LOW: _watchpoint,
    E.ESR_ELx_EC_WATCHPT_CUR: _watchpoint,
}


def classify_debug_exit(vcpu: K.Vcpu, run: K.KvmRun, points: DebugPoints, stepping: bool) -> DebugStop | None:
    """The debugger's stop for this KVM_EXIT_DEBUG, or None to let the guest go on (after
    re-injecting what was the guest's). A re-injected exception taken while stepping completes
    the step at the vector, as a step over an exception-generating instruction does."""
    handler = DEBUG_EXIT_HANDLERS.get(E.esr_ec(run.debug.arch.hsr), _other)
    return handler(vcpu, run, points, stepping)


def _reinject(vcpu: K.Vcpu, run: K.KvmRun, stepping: bool) -> DebugStop | None:
    inject_debug_exception(vcpu, run.debug.arch.hsr, run.debug.arch.far)
    return STEP_DONE if stepping else None


def inject_debug_exception(vcpu: K.Vcpu, hsr: int, far: int) -> None:
    """Emulate the guest taking this debug exception at EL1 (AArch64.TakeException)."""
    pstate = vcpu.get_one_reg(K.KVM_REG_ARM64_PSTATE)
    el = (pstate & PSR_MODE_MASK) >> 2
    ec = E.esr_ec(hsr)
    if el == 1 and ec in LOWER_TO_CURRENT:
        hsr = (hsr & ~E.ESR_ELx_EC_MASK) | ((ec + 1) << E.ESR_ELx_EC_SHIFT)
    offset = vector_group(pstate)
    vcpu.set_one_reg(SPSR_EL1, pstate)
    vcpu.set_one_reg(K.KVM_REG_ARM64_ELR_EL1, pc_of(vcpu))
    vcpu.set_one_reg(ESR_EL1, hsr)
    if ec in WATCHPOINT_CLASSES:
        vcpu.set_one_reg(FAR_EL1, far)
    vcpu.set_one_reg(K.KVM_REG_ARM64_PSTATE, PSR_MODE_EL1h | PSR_DAIF_MASK)
    vcpu.set_one_reg(K.KVM_REG_ARM64_PC, (vcpu.get_one_reg(VBAR_EL1) & VBAR_ALIGN_MASK) + offset)
