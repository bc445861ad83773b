"""Branches (Arm ARM C4.1.87): conditional, unconditional immediate and register, compare/test
and branch, and ERET.

Targets of immediate branches are decode-time constants. Pointer-authentication forms (BRAA,
RETAA, ERETAA, ...), DRPS (outside Debug state) and every other encoding of the group that
ARMv8.0 leaves unallocated have no entry, so they are UNDEFINED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from armvisor.arch.pstate import COND_AL, CONDITION_TABLE
from armvisor.cpu.decoder import DecodeTable, Op, bits, goto, sign_extend
from armvisor.cpu.exceptions import (
    IllegalExecutionState,
    exception_return,
    pending_interrupt,
)
from armvisor.cpu.state import MASK32, MASK64, ZR_READ, CpuState
from armvisor.cpu.stops import InterruptWindow

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu

TABLE = DecodeTable("branch")

LR = 30


def _target(pc: int, insn: int, hi: int, lo: int) -> int:
    """PC + SignExtend(imm:'00') for the immediate field insn<hi:lo>."""
    return (pc + (sign_extend(bits(insn, hi, lo), hi - lo + 1) << 2)) & MASK64


def _reg_read(n: int) -> int:
    """Register number -> index in X for a read where 31 is XZR."""
    return ZR_READ if n == 31 else n


# -- unconditional branch (immediate) --------------------------------------------------------------
@TABLE.add("0001 01ii iiii iiii iiii iiii iiii iiii", "B")
def build_b(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 B: branch to PC + imm26*4."""
    return goto(_target(pc, insn, 25, 0))


@TABLE.add("1001 01ii iiii iiii iiii iiii iiii iiii", "BL")
def build_bl(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 BL: X30 = PC + 4, branch to PC + imm26*4."""
    X, target, nxt = cpu.state.x, _target(pc, insn, 25, 0), pc + 4

    def bl(s: CpuState) -> int:
        X[LR] = nxt
        return target

    return bl


# -- conditional branch (immediate) ----------------------------------------------------------------
@TABLE.add("0101 0100 iiii iiii iiii iiii iii0 cccc", "B.cond")
def build_b_cond(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 B.cond: branch if the condition holds (AL and NV always branch)."""
    cond, target, nxt = bits(insn, 3, 0), _target(pc, insn, 23, 5), pc + 4
    if cond >= COND_AL:
        return goto(target)
    holds = CONDITION_TABLE[cond]

    def b_cond(s: CpuState) -> int:
        return target if holds[s.nzcv] else nxt

    return b_cond


# -- compare and branch, test and branch ------------------------------------------------------------
def _branch_on_bits(X: list[int], t: int, mask: int, nonzero: bool, target: int, nxt: int) -> Op:
    """Branch when ``X[t] & mask`` is non-zero (``nonzero``) or zero."""
    if nonzero:
        def branch_if_nonzero(s: CpuState) -> int:
            return target if X[t] & mask else nxt

        return branch_if_nonzero

    def branch_if_zero(s: CpuState) -> int:
        return nxt if X[t] & mask else target

    return branch_if_zero


@TABLE.add("x011 010o iiii iiii iiii iiii iiit tttt", "CBZ/CBNZ")
def build_cbz(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 CBZ / CBNZ: compare Wt/Xt with zero and branch."""
    mask = MASK64 if insn >> 31 else MASK32
    return _branch_on_bits(cpu.state.x, _reg_read(bits(insn, 4, 0)), mask, bool(bits(insn, 24, 24)),
                           _target(pc, insn, 23, 5), pc + 4)


@TABLE.add("x011 011o bbbb biii iiii iiii iiit tttt", "TBZ/TBNZ")
def build_tbz(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 TBZ / TBNZ: test bit b5:b40 of Rt and branch."""
    bit = (bits(insn, 31, 31) << 5) | bits(insn, 23, 19)
    return _branch_on_bits(cpu.state.x, _reg_read(bits(insn, 4, 0)), 1 << bit, bool(bits(insn, 24, 24)),
                           _target(pc, insn, 18, 5), pc + 4)


# -- unconditional branch (register) -----------------------------------------------------------------
@TABLE.add("1101 0110 0001 1111 0000 00nn nnn0 0000", "BR")
@TABLE.add("1101 0110 0101 1111 0000 00nn nnn0 0000", "RET")
def build_br(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 BR / RET: branch to Xn (RET's default Xn is X30, encoded in the field)."""
    X, n = cpu.state.x, _reg_read(bits(insn, 9, 5))

    def br(s: CpuState) -> int:
        return X[n]

    return br


@TABLE.add("1101 0110 0011 1111 0000 00nn nnn0 0000", "BLR")
def build_blr(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 BLR: X30 = PC + 4, branch to Xn (read before X30 is written)."""
    X, n, nxt = cpu.state.x, _reg_read(bits(insn, 9, 5)), pc + 4

    def blr(s: CpuState) -> int:
        target = X[n]
        X[LR] = nxt
        return target

    return blr


@TABLE.add("1101 0110 1001 1111 0000 0011 1110 0000", "ERET")
def build_eret(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 ERET: UNDEFINED at EL0; at EL1 restore PSTATE from SPSR_EL1 and branch to ELR_EL1.
    When that leaves PSTATE.IL set (an illegal return, or SPSR_EL1.IL=1) the next instruction
    takes the Illegal Execution state exception, which the executor carries out."""
    undefined = cpu.undefined_op(insn, pc)

    def eret(s: CpuState) -> int:
        if not s.el:
            return undefined(s)
        target = exception_return(s)
        if s.il:
            raise IllegalExecutionState(target)
        if pending_interrupt(s) is not None:
            raise InterruptWindow(target)
        return target

    eret.is_eret = True  # type: ignore[attr-defined]
    return eret
