"""Self-hosted debug (Arm ARM D2): software step, breakpoints and watchpoints of one PE.

The debug logic reads MDSCR_EL1 through ``CpuState.mdscr_sync``, the value as of the last
context synchronization event: a direct write is not guaranteed visible to it earlier, and
real PEs (and KVM's debug-exceptions selftest) start stepping only after the ISB.

These checks run only in the executor's debug loop, which the CPU selects while
:func:`debug_features_possible` holds, so ordinary execution pays nothing for them.

The debug target is EL1, or EL2 when MDCR_EL2.TDE is set (the hypervisor debugging its guest);
debug exceptions are then always enabled from EL0/EL1. At the target EL itself they need
MDSCR_EL1.KDE=1 and PSTATE.D=0, and with the OS Lock set (OSLSR_EL1.OSLK) breakpoint,
watchpoint and step exceptions are disabled while BRK still works
(AArch64.GenerateDebugExceptionsFrom).
"""

from __future__ import annotations

from armvisor.arch.pstate import PSR_D_BIT
from armvisor.arch.sysreg_encoding import sys_reg
from armvisor.arch.sysregs import (
    CONTEXTIDR_EL1,
    MDCR_EL2_TDE,
    MDSCR_EL1,
    NUM_BREAKPOINTS,
    NUM_WATCHPOINTS,
    OSLSR_EL1,
    OSLSR_EL1_OSLK,
)
from armvisor.cpu.state import CpuState

NUM_BRPS = NUM_BREAKPOINTS  # ID_AA64DFR0_EL1.BRPs + 1
NUM_WRPS = NUM_WATCHPOINTS  # ID_AA64DFR0_EL1.WRPs + 1
NUM_CTX_CMPS = 2  # context-aware breakpoints are the highest-numbered ones

MDSCR_EL1_SS = 1 << 0
MDSCR_EL1_KDE = 1 << 13
MDSCR_EL1_MDE = 1 << 15

DBGBCR = [sys_reg(2, 0, 0, n, 5) for n in range(16)]
DBGBVR = [sys_reg(2, 0, 0, n, 4) for n in range(16)]
DBGWCR = [sys_reg(2, 0, 0, n, 7) for n in range(16)]
DBGWVR = [sys_reg(2, 0, 0, n, 6) for n in range(16)]

# DBGBCR.BT breakpoint types (Arm ARM D19.3.2).
BT_UNLINKED_ADDRESS = 0b0000
BT_LINKED_ADDRESS = 0b0001
BT_UNLINKED_CONTEXTIDR = 0b0010
BT_LINKED_CONTEXTIDR = 0b0011

_VA_COMPARE_MASK = ((1 << 49) - 1) & ~3  # compare VA bits [48:2]


def debug_exceptions_enabled_at(s: CpuState, el: int, d_masked: bool) -> bool:
    """AArch64.GenerateDebugExceptionsFrom(el, non-secure, PSTATE.D = d_masked)."""
    if s.sr.get(OSLSR_EL1, 0) & OSLSR_EL1_OSLK:
        return False
    if s.mdcr_el2 & MDCR_EL2_TDE or el == 0:
        return True
    return bool(s.mdscr_sync & MDSCR_EL1_KDE) and not d_masked


def debug_exceptions_enabled(s: CpuState) -> bool:
    """Whether breakpoint/watchpoint/step exceptions can be generated at the current EL."""
    return debug_exceptions_enabled_at(s, s.el, bool(s.daif & PSR_D_BIT))


def step_active(s: CpuState) -> bool:
    """Software step is active (not inactive): MDSCR_EL1.SS and debug enabled here."""
    return bool(s.mdscr_sync & MDSCR_EL1_SS) and debug_exceptions_enabled(s)


def debug_features_possible(s: CpuState) -> bool:
    """Whether the executor must run its debug loop: stepping, or any breakpoint/watchpoint
    enabled while MDSCR_EL1.MDE is set."""
    sr = s.sr
    mdscr = sr.get(MDSCR_EL1, 0) | s.mdscr_sync
    if mdscr & MDSCR_EL1_SS:
        return True
    if not mdscr & MDSCR_EL1_MDE:
        return False
    return any(sr.get(DBGBCR[n], 0) & 1 for n in range(NUM_BRPS)) or any(
        sr.get(DBGWCR[n], 0) & 1 for n in range(NUM_WRPS))


def _state_match(ctrl: int, el: int) -> bool:
    """PMC/PAC with HMC and SSC (non-secure EL0/EL1 only): does the control match this EL?"""
    ssc = (ctrl >> 14) & 3
    if ssc not in (0, 1):
        return False
    pmc = (ctrl >> 1) & 3
    return bool(pmc & (2 if el == 0 else 1))


def _contextidr_match(s: CpuState, n: int) -> bool:
    return (s.sr.get(CONTEXTIDR_EL1, 0) & 0xFFFFFFFF) == (s.sr.get(DBGBVR[n], 0) & 0xFFFFFFFF)


def _linked_context_match(s: CpuState, lbn: int) -> bool:
    """A linked Context-ID breakpoint ``lbn`` is enabled, of the right type, and matches."""
    if lbn >= NUM_BRPS or lbn < NUM_BRPS - NUM_CTX_CMPS:
        return False
    ctrl = s.sr.get(DBGBCR[lbn], 0)
    return bool(ctrl & 1) and (ctrl >> 20) & 0xF == BT_LINKED_CONTEXTIDR and _contextidr_match(s, lbn)


def breakpoint_hit(s: CpuState, pc: int) -> bool:
    """AArch64.BreakpointValueMatch over all breakpoints for an instruction at ``pc``."""
    sr = s.sr
    el = s.el
    for n in range(NUM_BRPS):
        ctrl = sr.get(DBGBCR[n], 0)
        if not ctrl & 1 or not _state_match(ctrl, el) or not (ctrl >> 5) & 0xF:
            continue
        bt = (ctrl >> 20) & 0xF
        if bt in (BT_UNLINKED_ADDRESS, BT_LINKED_ADDRESS):
            if (pc ^ sr.get(DBGBVR[n], 0)) & _VA_COMPARE_MASK:
                continue
            if bt == BT_UNLINKED_ADDRESS or _linked_context_match(s, (ctrl >> 16) & 0xF):
                return True
        elif bt == BT_UNLINKED_CONTEXTIDR and n >= NUM_BRPS - NUM_CTX_CMPS:
            if _contextidr_match(s, n):
                return True
    return False


def _watched_bytes(ctrl: int, wvr: int) -> tuple[int, int, int]:
    """(base, length, byte mask over the range) of the bytes a watchpoint selects."""
    mask = (ctrl >> 24) & 0x1F
    if mask >= 3:
        base = wvr & ~((1 << mask) - 1)
        return base, 1 << mask, -1
    bas = (ctrl >> 5) & 0xFF
    if wvr & 4:
        return wvr & ~3, 4, bas & 0xF
    return wvr & ~7, 8, bas


def watchpoint_hit(s: CpuState, va: int, size: int, is_write: bool) -> bool:
    """AArch64.WatchpointMatch over all watchpoints for an access of ``size`` bytes at ``va``."""
    sr = s.sr
    el = s.el
    for n in range(NUM_WRPS):
        ctrl = sr.get(DBGWCR[n], 0)
        if not ctrl & 1 or not _state_match(ctrl, el):
            continue
        lsc = (ctrl >> 3) & 3
        if not lsc & (2 if is_write else 1):
            continue
        if ctrl & (1 << 20) and not _linked_context_match(s, (ctrl >> 16) & 0xF):
            continue
        base, length, bytemask = _watched_bytes(ctrl, sr.get(DBGWVR[n], 0) & ((1 << 64) - 4))
        lo, hi = max(va, base), min(va + size, base + length)
        for addr in range(lo, hi):
            if bytemask >> (addr - base) & 1:
                return True
    return False
