"""Skipping a trapped instruction (arch/arm64/kvm/hyp/include/hyp/adjust_pc.h kvm_skip_instr,
hyp/aarch32.c kvm_skip_instr32 and kvm_adjust_itstate).

Pure functions on (PC, PSTATE) so the AArch32 rules can be tested with synthetic state even
though armvisor's PE executes only A64.
"""

from __future__ import annotations

from armvisor.arch.pstate import PSR_MODE32_BIT, PSR_SS_BIT

PSR_AA32_T_BIT = 1 << 5
PSR_AA32_IT_MASK = 0x0600FC00  # IT[1:0] in CPSR[26:25], IT[7:2] in CPSR[15:10]
PSR_BTYPE_MASK = 3 << 10


def itstate(cpsr: int) -> int:
    """IT[7:0] of an AArch32 CPSR."""
    return ((cpsr >> 8) & 0xFC) | ((cpsr >> 25) & 3)


def with_itstate(cpsr: int, it: int) -> int:
    return (cpsr & ~PSR_AA32_IT_MASK) | ((it & 0xFC) << 8) | ((it & 3) << 25)


def kvm_adjust_itstate(cpsr: int) -> int:
    """Advance ITSTATE after a Thumb instruction in an IT block (ITAdvance)."""
    it = itstate(cpsr)
    if not cpsr & PSR_AA32_T_BIT or it == 0:
        return cpsr
    if it & 7 == 0:
        it = 0
    else:
        it = (it & 0xE0) | ((it << 1) & 0x1F)
    return with_itstate(cpsr, it)


def kvm_skip_instr(pc: int, pstate: int, il32: bool) -> tuple[int, int]:
    """The PC and PSTATE after skipping the trapped instruction: AArch64 PC += 4 and BTYPE
    cleared; AArch32 PC += 2 for a 16-bit Thumb encoding (ESR.IL=0), else 4, then ITSTATE
    advanced. Always PSTATE.SS := 0, advancing the software-step state machine."""
    if pstate & PSR_MODE32_BIT:
        step = 4 if il32 or not pstate & PSR_AA32_T_BIT else 2
        pc = (pc + step) & 0xFFFFFFFF
        pstate = kvm_adjust_itstate(pstate)
    else:
        pc = (pc + 4) & ((1 << 64) - 1)
        pstate &= ~PSR_BTYPE_MASK
    return pc, pstate & ~PSR_SS_BIT
