"""Exception entry to EL1 and exception return (Arm ARM D1.10, pseudocode AArch64.TakeException
and AArch64.ExceptionReturn), for a PE whose EL2 is the hypervisor (HCR_EL2.TGE=0)."""

from __future__ import annotations

from armvisor.arch.esr import esr
from armvisor.arch.pstate import (
    PSR_D_BIT,
    PSR_DAIF_MASK,
    PSR_F_BIT,
    PSR_I_BIT,
    PSR_MODE32_BIT,
    PSR_NZCV_SHIFT,
    PSR_PAN_BIT,
    PSR_SS_BIT,
)
from armvisor.arch.sysregs import (
    ELR_EL1,
    ESR_EL1,
    FAR_EL1,
    MDSCR_EL1,
    SPSR_EL1,
    VBAR_EL1,
)
from armvisor.arch.vectors import (  # noqa: F401 - VECTOR_IRQ/FIQ/SERROR re-exported for cpu users
    VECTOR_CURRENT_SP0,
    VECTOR_CURRENT_SPX,
    VECTOR_FIQ,
    VECTOR_IRQ,
    VECTOR_LOWER_A64,
    VECTOR_SERROR,
    VECTOR_SYNC,
)
from armvisor.cpu.debug import MDSCR_EL1_SS, debug_exceptions_enabled_at
from armvisor.cpu.state import MASK64, CpuState


def vector_base_offset(s: CpuState) -> int:
    """Which quarter of the vector table an exception to EL1 from the current state uses."""
    if s.el == 0:
        return VECTOR_LOWER_A64
    return VECTOR_CURRENT_SPX if s.spsel else VECTOR_CURRENT_SP0


def take_exception(s: CpuState, ec: int, iss: int, preferred_return: int,
                   far: int | None = None, kind: int = VECTOR_SYNC, il: bool = True) -> int:
    """Take an exception to EL1 and return the vector address to continue at.

    SPSR_EL1 gets PSTATE as it is now (including PSTATE.SS: the caller clears SS first for an
    instruction that completed, e.g. SVC); then PSTATE.{D,A,I,F} are set, SS and IL cleared and
    the PE moves to EL1h. ``ec``/``iss`` fill ESR_EL1 for synchronous exceptions; FAR_EL1 is
    written only when ``far`` is given (it is UNKNOWN otherwise and we leave it).
    """
    sr = s.sr
    spsr = s.pstate
    vector = (sr.get(VBAR_EL1, 0) & ~0x7FF & MASK64) + vector_base_offset(s) + kind
    sr[SPSR_EL1] = spsr
    sr[ELR_EL1] = preferred_return & MASK64
    if kind == VECTOR_SYNC or kind == VECTOR_SERROR:
        sr[ESR_EL1] = esr(ec, iss, il)
    if far is not None:
        sr[FAR_EL1] = far & MASK64
    s.daif = PSR_DAIF_MASK
    s.ss = 0
    s.il = 0
    s.exclusive = None  # ClearExclusiveLocal on exception entry
    s.exception_taken = True
    s.mdscr_sync = sr.get(MDSCR_EL1, 0)  # exception entry is a context synchronization event
    s.set_el_spsel(1, 1)
    return vector


def pending_interrupt(s: CpuState) -> int | None:
    """The vector offset of the virtual interrupt the PE takes now, if any: FIQ before IRQ,
    each masked by its PSTATE bit (virtual interrupts at EL0/EL1 with HCR_EL2.TGE=0, Arm ARM
    D1.11.1)."""
    if s.vfiq and not s.daif & PSR_F_BIT:
        return VECTOR_FIQ
    if s.virq and not s.daif & PSR_I_BIT:
        return VECTOR_IRQ
    return None


def take_interrupt(s: CpuState, return_pc: int) -> int | None:
    """Take the pending unmasked IRQ/FIQ before the instruction at ``return_pc`` (the
    preferred return address) and return its vector, or None. SPSR_EL1.SS records PSTATE.SS
    as it is: 1 in the active-not-pending step state, 0 in active-pending (Arm ARM D2.12.6);
    ESR_EL1 is not written."""
    kind = pending_interrupt(s)
    if kind is None:
        return None
    return take_exception(s, 0, 0, return_pc, kind=kind)


def exception_return(s: CpuState) -> int:
    """ERET from EL1: restore PSTATE from SPSR_EL1 and return ELR_EL1 as the new PC.

    An illegal return (to EL2/EL3, to AArch32 which this PE does not implement at EL0/EL1, to
    EL0 with SPSel=1, or to a reserved mode with M[1] set) sets PSTATE.IL and keeps the EL, as
    AArch64.ExceptionReturn does.
    """
    sr = s.sr
    spsr = sr.get(SPSR_EL1, 0)
    target = sr.get(ELR_EL1, 0)
    s.exclusive = None
    s.mdscr_sync = sr.get(MDSCR_EL1, 0)  # exception return is a context synchronization event
    mode_el = (spsr >> 2) & 3
    illegal = bool(spsr & PSR_MODE32_BIT) or mode_el > 1 or (mode_el == 0 and spsr & 1) or bool(spsr & 2)
    # DebugExceptionReturnSS: SS survives only if stepping is enabled at the destination and
    # disabled where the ERET executes (Arm ARM D2.12.5).
    ss = 0
    if spsr & PSR_SS_BIT and s.mdscr_sync & MDSCR_EL1_SS:
        dest_el = s.el if illegal else mode_el
        here = debug_exceptions_enabled_at(s, s.el, bool(s.daif & PSR_D_BIT))
        there = debug_exceptions_enabled_at(s, dest_el, bool(spsr & PSR_D_BIT))
        ss = 1 if (there and not here) else 0
    if illegal:
        # Illegal exception return: NZCV, DAIF etc. from SPSR, EL and SPSel unchanged, IL=1.
        s.nzcv = (spsr >> PSR_NZCV_SHIFT) & 0xF
        s.daif = spsr & PSR_DAIF_MASK
        s.pan = 1 if spsr & PSR_PAN_BIT else 0
        s.il = 1
    else:
        s.pstate = spsr  # IL as SPSR has it; SS is set below
    s.ss = ss
    # A misaligned ELR is kept: the PC alignment fault comes from the next fetch.
    return target & MASK64


class IllegalExecutionState(Exception):
    """Raised by an ERET that leaves PSTATE.IL set: the instruction at ``target`` takes the
    Illegal Execution state exception (EC 0x0E) instead of executing, unless fetching it
    faults first (Arm ARM D1.4.4, exception priority: PC alignment and Instruction Abort come
    before Illegal Execution state). The executor carries it out."""

    def __init__(self, target: int):
        super().__init__(target)
        self.target = target
