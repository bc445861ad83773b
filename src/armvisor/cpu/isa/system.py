"""Exception generation and system instructions (Arm ARM C4.1.87, op0=0b110 of the group).

SVC/HVC/SMC/BRK/HLT/DCPS, hints (NOP, YIELD, WFE, WFI, SEV, SEVL; every other hint is a NOP as
the architecture requires), barriers and CLREX, MSR (immediate) to PSTATE fields, and MRS/MSR
(register)/SYS, whose semantics live in :mod:`armvisor.cpu.sysreg_access`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from armvisor.arch.esr import (
    ESR_ELx_CV_COND_AL,
    ESR_ELx_EC_BRK64,
    ESR_ELx_EC_HVC64,
    ESR_ELx_EC_SMC64,
    ESR_ELx_EC_SVC64,
    ESR_ELx_EC_WFx,
    ESR_ELx_WFx_ISS_WFE,
    ESR_ELx_WFx_ISS_WFI,
    esr,
    sys64_iss,
)
from armvisor.arch.sysreg_encoding import sys_reg
from armvisor.arch.sysregs import (
    DAIF,
    HCR_HCD,
    HCR_TSC,
    HCR_TWE,
    HCR_TWI,
    MDCR_EL2_TDE,
    MDSCR_EL1,
    SCTLR_EL1,
    SCTLR_EL1_NTWE,
    SCTLR_EL1_NTWI,
)
from armvisor.cpu.decoder import DecodeTable, Op, bits, goto
from armvisor.cpu.exceptions import pending_interrupt, take_exception
from armvisor.cpu.state import CpuState
from armvisor.cpu.stops import InterruptWindow, TrapToEL2, WaitForInterruptSignal
from armvisor.cpu.sysreg_access import (
    EL0_ENABLES,
    at_el0,
    el0_trap,
    guarded,
    mrs_op,
    msr_op,
    sys_op,
    undefined_when,
)

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu

TABLE = DecodeTable("system")


def _imm16(insn: int) -> int:
    return bits(insn, 20, 5)


# -- exception generation (C6.2 SVC, HVC, SMC, BRK, HLT, DCPSn) -------------------------------
@TABLE.add("1101 0100 000i iiii iiii iiii iii0 0001", "SVC")
def build_svc(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 SVC: EC 0x15 to EL1, preferred return the next instruction. SVC completes, so
    PSTATE.SS is cleared before SPSR_EL1 records it."""
    imm, nxt = _imm16(insn), pc + 4

    def svc(s: CpuState) -> int:
        s.ss = 0
        return take_exception(s, ESR_ELx_EC_SVC64, imm, nxt)

    return svc


@TABLE.add("1101 0100 000i iiii iiii iiii iii0 0010", "HVC")
def build_hvc(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 HVC: UNDEFINED at EL0 and when HCR_EL2.HCD=1; else EC 0x16 to EL2, returning
    to the next instruction."""
    syndrome, nxt = esr(ESR_ELx_EC_HVC64, _imm16(insn)), pc + 4

    def hvc(s: CpuState) -> int:
        s.ss = 0
        raise TrapToEL2(syndrome, return_pc=nxt)

    return guarded(undefined_when(_el0_or_hvc_disabled, cpu.undefined_op(insn, pc)), hvc)


def _el0_or_hvc_disabled(s: CpuState) -> bool:
    return not s.el or bool(s.hcr_el2 & HCR_HCD)


@TABLE.add("1101 0100 000i iiii iiii iiii iii0 0011", "SMC")
def build_smc(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 SMC: UNDEFINED at EL0; at EL1 trapped by HCR_EL2.TSC (EC 0x17, preferred return
    the SMC itself), else UNDEFINED as this PE runs no EL3 firmware."""
    syndrome, undefined = esr(ESR_ELx_EC_SMC64, _imm16(insn)), cpu.undefined_op(insn, pc)

    def smc(s: CpuState) -> int:
        if s.el and s.hcr_el2 & HCR_TSC:
            raise TrapToEL2(syndrome)
        return undefined(s)

    return smc


@TABLE.add("1101 0100 001i iiii iiii iiii iii0 0000", "BRK")
def build_brk(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 BRK: EC 0x3C with the immediate, preferred return the BRK; to EL2 when
    MDCR_EL2.TDE routes debug exceptions there."""
    imm = _imm16(insn)
    syndrome = esr(ESR_ELx_EC_BRK64, imm)

    def brk(s: CpuState) -> int:
        if s.mdcr_el2 & MDCR_EL2_TDE:
            raise TrapToEL2(syndrome)
        return take_exception(s, ESR_ELx_EC_BRK64, imm, pc)

    return brk


def _undefined(cpu: "Cpu", insn: int, pc: int) -> Op:
    """HLT (halting debug is disabled: EDSCR.HDE=0) and DCPS1-3 (outside Debug state)."""
    return cpu.undefined_op(insn, pc)


TABLE.add("1101 0100 010x xxxx xxxx xxxx xxx0 0000", "HLT")(_undefined)
TABLE.add("1101 0100 101x xxxx xxxx xxxx xxx0 00xx", "DCPS")(_undefined)


# -- hints (C6.2 NOP, YIELD, WFE, WFI, SEV, SEVL, HINT) ---------------------
def _wfx_syndrome(ti: int) -> int:
    """ISS of a trapped WFI/WFE from AArch64: CV=1, COND=0b1110, TI."""
    return ESR_ELx_CV_COND_AL | ti


def _wfx(pc: int, ti: int, el0_enable: int, hcr_trap: int, complete: Callable[[CpuState], int]) -> Op:
    """WFI/WFE: trapped to EL1 at EL0 when SCTLR_EL1.nTWx=0, to EL2 when HCR_EL2.TWx=1 (both
    with the instruction as preferred return), else ``complete``."""
    iss = _wfx_syndrome(ti)
    syndrome = esr(ESR_ELx_EC_WFx, iss)

    def wfx(s: CpuState) -> int:
        if not s.el and not s.sr[SCTLR_EL1] & el0_enable:
            return take_exception(s, ESR_ELx_EC_WFx, iss, pc)
        if s.hcr_el2 & hcr_trap:
            raise TrapToEL2(syndrome)
        return complete(s)

    return wfx


def _build_wfi(cpu: "Cpu", pc: int) -> Op:
    """C6.2 WFI: untrapped, the PE waits for an interrupt after the WFI, unless one is already
    asserted: a pending interrupt wakes the PE even while PSTATE masks it (Arm ARM D1.16.2)."""
    nxt = pc + 4

    def wait(s: CpuState) -> int:
        if s.virq or s.vfiq:
            return nxt
        raise WaitForInterruptSignal(nxt)

    return _wfx(pc, ESR_ELx_WFx_ISS_WFI, SCTLR_EL1_NTWI, HCR_TWI, wait)


def _build_wfe(cpu: "Cpu", pc: int) -> Op:
    """C6.2 WFE: untrapped, it consumes a set event register, or completes at once (a pending
    interrupt is a wake-up event, and a spurious wake-up is allowed too)."""
    nxt = pc + 4

    def consume_event(s: CpuState) -> int:
        s.event_register = 0
        return nxt

    return _wfx(pc, ESR_ELx_WFx_ISS_WFE, SCTLR_EL1_NTWE, HCR_TWE, consume_event)


def _build_sev(cpu: "Cpu", pc: int) -> Op:
    """C6.2 SEV / C6.2 SEVL: set the event register (this PE is the only one)."""
    nxt = pc + 4

    def sev(s: CpuState) -> int:
        s.event_register = 1
        return nxt

    return sev


_HINTS: dict[int, Callable[["Cpu", int], Op]] = {
    0b0000_010: _build_wfe,
    0b0000_011: _build_wfi,
    0b0000_100: _build_sev,
    0b0000_101: _build_sev,
}


@TABLE.add("1101 0101 0000 0011 0010 xxxx xxx1 1111", "HINT")
def build_hint(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 HINT: CRm:op2 selects; unallocated and unimplemented hints execute as NOP."""
    builder = _HINTS.get(bits(insn, 11, 5))
    return builder(cpu, pc) if builder is not None else goto(pc + 4)


# -- barriers (C6.2 CLREX, DSB, DMB, ISB) ------------------------------------------------------
@TABLE.add("1101 0101 0000 0011 0011 xxxx 0101 1111", "CLREX")
def build_clrex(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 CLREX: clear the local exclusive monitor."""
    nxt = pc + 4

    def clrex(s: CpuState) -> int:
        s.exclusive = None
        return nxt

    return clrex


@TABLE.add("1101 0101 0000 0011 0011 xxxx 1001 1111", "DSB")
@TABLE.add("1101 0101 0000 0011 0011 xxxx 1011 1111", "DMB")
def build_barrier(cpu: "Cpu", insn: int, pc: int) -> Op:
    """DSB, DMB: one PE executing in program order needs no barrier. SB (op2=0b111) and the
    other op2 values are unallocated in ARMv8.0."""
    return goto(pc + 4)


@TABLE.add("1101 0101 0000 0011 0011 xxxx 1101 1111", "ISB")
def build_isb(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 ISB: a context synchronization event. Instruction fetches already see stores
    (stores invalidate decoded code); what it synchronizes here is the debug logic's view of
    MDSCR_EL1 (``CpuState.mdscr_sync``)."""
    nxt = pc + 4

    def isb(s: CpuState) -> int:
        s.mdscr_sync = s.sr.get(MDSCR_EL1, 0)
        return nxt

    return isb


# -- MSR (immediate) (C6.2) -----------------------------------------------------------------------
_DAIF_ISS_OP1 = 0b011


def _build_daif(cpu: "Cpu", insn: int, pc: int, setting: bool) -> Op:
    """MSR DAIFSet/DAIFClr: set/clear PSTATE.{D,A,I,F} from CRm; at EL0 only with SCTLR_EL1.UMA,
    else trapped to EL1 (EC 0x18). DAIFClr that unmasks an asserted interrupt has it taken
    before the next instruction."""
    crm, op2, nxt = bits(insn, 11, 8), bits(insn, 7, 5), pc + 4
    mask = crm << 6
    iss = sys64_iss(0, _DAIF_ISS_OP1, 4, crm, op2, 31, False)

    if setting:
        def daif(s: CpuState) -> int:
            s.daif |= mask
            return nxt
    else:
        def daif(s: CpuState) -> int:
            s.daif &= ~mask
            if pending_interrupt(s) is not None:
                raise InterruptWindow(nxt)
            return nxt

    return guarded(el0_trap(*EL0_ENABLES[DAIF], iss, pc), daif)


@TABLE.add("1101 0101 0000 0011 0100 xxxx 1101 1111", "MSR DAIFSet")
def build_daifset(cpu: "Cpu", insn: int, pc: int) -> Op:
    return _build_daif(cpu, insn, pc, True)


@TABLE.add("1101 0101 0000 0011 0100 xxxx 1111 1111", "MSR DAIFClr")
def build_daifclr(cpu: "Cpu", insn: int, pc: int) -> Op:
    return _build_daif(cpu, insn, pc, False)


@TABLE.add("1101 0101 0000 0000 0100 xxxx 1011 1111", "MSR SPSel")
def build_spsel(cpu: "Cpu", insn: int, pc: int) -> Op:
    """MSR SPSel, #imm: select SP_EL0 or SP_ELx (UNDEFINED at EL0). PAN, UAO, DIT, SSBS, TCO
    and the flag-manipulation forms are later extensions: UNDEFINED on this PE."""
    spsel, nxt = bits(insn, 8, 8), pc + 4

    def msr_spsel(s: CpuState) -> int:
        s.set_el_spsel(s.el, spsel)
        return nxt

    return guarded(undefined_when(at_el0, cpu.undefined_op(insn, pc)), msr_spsel)


# -- SYS / MRS / MSR (register) (C5.3) -----------------------------------------------------------
def _encoding(insn: int) -> tuple[int, int]:
    """(packed op0:op1:CRn:CRm:op2, Rt) of a system instruction."""
    return sys_reg(bits(insn, 20, 19), bits(insn, 18, 16), bits(insn, 15, 12), bits(insn, 11, 8),
                   bits(insn, 7, 5)), bits(insn, 4, 0)


@TABLE.add("1101 0101 0000 1xxx xxxx xxxx xxxx xxxx", "SYS")
def build_sys(cpu: "Cpu", insn: int, pc: int) -> Op:
    return sys_op(cpu, insn, pc, *_encoding(insn))


@TABLE.add("1101 0101 0001 xxxx xxxx xxxx xxxx xxxx", "MSR (register)")
def build_msr(cpu: "Cpu", insn: int, pc: int) -> Op:
    return msr_op(cpu, insn, pc, *_encoding(insn))


@TABLE.add("1101 0101 0011 xxxx xxxx xxxx xxxx xxxx", "MRS")
def build_mrs(cpu: "Cpu", insn: int, pc: int) -> Op:
    return mrs_op(cpu, insn, pc, *_encoding(insn))

