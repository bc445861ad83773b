"""Stack pointer alignment checking (Arm ARM D1.8.2, "Stack pointer alignment checking").

When SCTLR_EL1.SA (at EL1) or SCTLR_EL1.SA0 (at EL0) is set, a load or store whose base
register is SP with SP not a multiple of 16 takes an SP alignment fault (EC 0x26, ISS 0) to EL1,
before any memory access. The SP value checked is the base before any writeback.

Load/store builders whose base register is SP wrap their op with :func:`sp_checked` at decode
time, so other loads and stores pay nothing.
"""

from __future__ import annotations

from armvisor.arch.esr import ESR_ELx_EC_SP_ALIGN
from armvisor.arch.sysregs import SCTLR_EL1, SCTLR_EL1_SA, SCTLR_EL1_SA0
from armvisor.cpu.decoder import Op
from armvisor.cpu.exceptions import take_exception
from armvisor.cpu.state import CpuState


def check_sp_alignment(s: CpuState, pc: int) -> int | None:
    """Take the SP alignment fault for the instruction at ``pc`` if it applies (returns the
    vector), else None."""
    if s.sp & 0xF and s.sr[SCTLR_EL1] & (SCTLR_EL1_SA if s.el else SCTLR_EL1_SA0):
        return take_exception(s, ESR_ELx_EC_SP_ALIGN, 0, pc)
    return None


def sp_checked(op: Op, pc: int) -> Op:
    """``op`` (a load/store at ``pc`` with SP as base) preceded by the SP alignment check."""

    def checked(s: CpuState) -> int:
        vector = check_sp_alignment(s, pc)
        return vector if vector is not None else op(s)

    checked.__dict__.update(op.__dict__)  # keep attributes such as dabt_iss
    return checked
