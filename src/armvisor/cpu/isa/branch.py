"""Branches (Arm ARM C4.1.87): conditional, unconditional immediate and register, compare/test
and branch, and ERET.

Targets of immediate branches are decode-time constants. Pointer-authentication forms (BRAA,
RETAA, ERETAA, ...), DRPS (outside Debug state) and every other encoding of the group that
ARMv8.0 leaves unallocated have no entry, so they are UNDEFINED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from armvisor.arch.pstate import COND_AL, CONDITION_TABLE
from armvisor.cpu.decoder import DecodeTable, Op, bits, sign_extend
from armvisor.cpu.emit import Emitted, emitted, emitter
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

def _target(pc: int, insn: int, hi: int, lo: int) -> int:
    """PC + SignExtend(imm:'00') for the immediate field insn<hi:lo>."""
    return (pc + (sign_extend(bits(insn, hi, lo), hi - lo + 1) << 2)) & MASK64


def _reg_read(n: int) -> int:
    """Register number -> index in X for a read where 31 is XZR."""
    return ZR_READ if n == 31 else n


# -- unconditional branch (immediate) --------------------------------------------------------------
@TABLE.add("0001 01ii iiii iiii iiii iiii iiii iiii", "B")
@emitter(pc_relative=True)
def emit_b(insn: int, pc: int) -> Emitted:
    """C6.2 B: branch to PC + imm26*4."""
    target = _target(pc, insn, 25, 0)
    return emitted(pc, "", "{target}", target=target, heads=(target,))


@TABLE.add("1001 01ii iiii iiii iiii iiii iiii iiii", "BL")
@emitter(pc_relative=True)
def emit_bl(insn: int, pc: int) -> Emitted:
    """C6.2 BL: X30 = PC + 4, branch to PC + imm26*4."""
    target = _target(pc, insn, 25, 0)
    return emitted(pc, "x[30] = {npc}", "{target}", target=target, heads=(target, pc + 4))


# -- conditional branch (immediate) ----------------------------------------------------------------
# The next PC of B.cond (the translator recognises it: see armvisor.cpu.translate's compare fusion).
B_COND_NEXT = "{target} if {holds} >> s.nzcv & 1 else {npc}"


@TABLE.add("0101 0100 iiii iiii iiii iiii iii0 cccc", "B.cond")
@emitter(pc_relative=True)
def emit_b_cond(insn: int, pc: int) -> Emitted:
    """C6.2 B.cond: branch if the condition holds (AL and NV always branch). ``holds`` has bit
    NZCV set for each flag value the condition accepts (ConditionHolds, Arm ARM J1.3)."""
    cond, target = bits(insn, 3, 0), _target(pc, insn, 23, 5)
    if cond >= COND_AL:
        return emitted(pc, "", "{target}", target=target, heads=(target,))
    holds = sum(1 << nzcv for nzcv, ok in enumerate(CONDITION_TABLE[cond]) if ok)
    return emitted(pc, "", B_COND_NEXT, target=target,
                   holds=holds, heads=(target, pc + 4))


# -- compare and branch, test and branch ------------------------------------------------------------
def _branch_on_bits(pc: int, t: int, mask: int, nonzero: bool, target: int) -> Emitted:
    """Branch when ``X[t] & mask`` is non-zero (``nonzero``) or zero."""
    taken = "{target} if x[{t}] & {mask} else {npc}" if nonzero else "{npc} if x[{t}] & {mask} else {target}"
    return emitted(pc, "", taken, t=t, mask=mask, target=target, heads=(target, pc + 4))


@TABLE.add("x011 010o iiii iiii iiii iiii iiit tttt", "CBZ/CBNZ")
@emitter(pc_relative=True)
def emit_cbz(insn: int, pc: int) -> Emitted:
    """C6.2 CBZ / CBNZ: compare Wt/Xt with zero and branch."""
    mask = MASK64 if insn >> 31 else MASK32
    return _branch_on_bits(pc, _reg_read(bits(insn, 4, 0)), mask, bool(bits(insn, 24, 24)),
                           _target(pc, insn, 23, 5))


@TABLE.add("x011 011o bbbb biii iiii iiii iiit tttt", "TBZ/TBNZ")
@emitter(pc_relative=True)
def emit_tbz(insn: int, pc: int) -> Emitted:
    """C6.2 TBZ / TBNZ: test bit b5:b40 of Rt and branch."""
    bit = (bits(insn, 31, 31) << 5) | bits(insn, 23, 19)
    return _branch_on_bits(pc, _reg_read(bits(insn, 4, 0)), 1 << bit, bool(bits(insn, 24, 24)),
                           _target(pc, insn, 18, 5))


# -- unconditional branch (register) -----------------------------------------------------------------
@TABLE.add("1101 0110 0001 1111 0000 00nn nnn0 0000", "BR")
@TABLE.add("1101 0110 0101 1111 0000 00nn nnn0 0000", "RET")
@emitter
def emit_br(insn: int, pc: int) -> Emitted:
    """C6.2 BR / RET: branch to Xn (RET's default Xn is X30, encoded in the field)."""
    return emitted(pc, "", "x[{n}]", n=_reg_read(bits(insn, 9, 5)))


@TABLE.add("1101 0110 0011 1111 0000 00nn nnn0 0000", "BLR")
@emitter(pc_relative=True)
def emit_blr(insn: int, pc: int) -> Emitted:
    """C6.2 BLR: X30 = PC + 4, branch to Xn (read before X30 is written)."""
    return emitted(pc, "target_ = x[{n}]\nx[30] = {npc}", "target_", n=_reg_read(bits(insn, 9, 5)),
                   heads=(pc + 4,))


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
