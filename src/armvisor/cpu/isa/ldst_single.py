"""Loads and stores of one general-purpose register (Arm ARM C4.1.88): LDR/STR and their byte,
halfword and sign-extending forms with an unsigned, unscaled, pre-/post-indexed or register
offset, the unprivileged LDTR/STTR family, LDR (literal), and PRFM/PRFUM (no-ops).

The forms without writeback carry the ISV=1 data-abort syndrome: the Arm ARM (ESR_ELx, ISS
encoding for a Data Abort, field ISV) makes it valid for "AArch64 loads and stores of a single
general-purpose register (including the register specified with 0b11111, including those with
Acquire/Release semantics, but excluding Load Exclusive or Store Exclusive and excluding those
with writeback)". LDR (literal) is such a load, and QEMU also reports ISV=1 for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from armvisor.cpu.decoder import DecodeTable, Op, bits, goto, sign_extend
from armvisor.cpu.isa.ldst_common import (
    Index,
    Xfer,
    addressed,
    literal,
    load,
    register_offset,
    store,
    with_syndrome,
)
from armvisor.cpu.state import MASK32, MASK64

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu

TABLE = DecodeTable("ldst_single")


class Single(NamedTuple):
    """What size:opc selects (Arm ARM C4.1.88, load/store register encodings with V=0)."""

    is_load: bool
    signed: bool
    sf: bool  # the register is an X register (ESR_ELx.SF)


# (size, opc) -> Single; (0b11, 0b10) is PRFM; the pairs absent are unallocated.
_SINGLES = {
    **{(size, 0b00): Single(False, False, size == 3) for size in range(4)},  # STRB/STRH/STR
    **{(size, 0b01): Single(True, False, size == 3) for size in range(4)},  # LDRB/LDRH/LDR
    **{(size, 0b10): Single(True, True, True) for size in range(3)},  # LDRSB/LDRSH/LDRSW Xt
    **{(size, 0b11): Single(True, True, False) for size in range(2)},  # LDRSB/LDRSH Wt
}
PRFM = (0b11, 0b10)

# op4 of the 9-bit immediate forms -> addressing (unprivileged = plain at EL0/EL1, MMU off).
_IMM9_INDEX = {0b00: Index.OFFSET, 0b01: Index.POST, 0b10: Index.OFFSET, 0b11: Index.PRE}


def _transfer(cpu: "Cpu", single: Single, size: int, t: int) -> Xfer:
    X = cpu.state.x
    nbytes = 1 << size
    if not single.is_load:
        return store(X, t, cpu.access.write[nbytes])
    sign_bit = 1 << (8 * nbytes - 1) if single.signed else 0
    return load(X, t, cpu.access.read[nbytes], sign_bit, MASK64 if single.sf else MASK32)


def _immediate(cpu: "Cpu", insn: int, pc: int, offset: int, index: Index) -> Op:
    """Shared decode of the immediate-offset forms (C6.2 LDR/STR (immediate), LDUR/STUR,
    LDTR/STTR and their B/H/SB/SH/SW variants)."""
    size, opc, t = bits(insn, 31, 30), bits(insn, 23, 22), bits(insn, 4, 0)
    single = _SINGLES.get((size, opc))
    if single is None:
        return cpu.undefined_op(insn, pc)
    op = addressed(cpu, pc, bits(insn, 9, 5), offset, index, _transfer(cpu, single, size, t))
    if index is Index.OFFSET:
        with_syndrome(op, size, single.signed, t, single.sf)
    return op


@TABLE.add("ss 111 0 01 oo iiiiiiiiiiii nnnnn ttttt", "ldst_uimm")
def ldst_unsigned_offset(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 LDR/STR (immediate), unsigned offset: imm12 scaled by the access size."""
    size = bits(insn, 31, 30)
    if (size, bits(insn, 23, 22)) == PRFM:
        return goto(pc + 4)
    return _immediate(cpu, insn, pc, bits(insn, 21, 10) << size, Index.OFFSET)


@TABLE.add("ss 111 0 00 oo 0 iiiiiiiii ww nnnnn ttttt", "ldst_imm9")
def ldst_imm9(cpu: "Cpu", insn: int, pc: int) -> Op:
    """LDUR/STUR (op4=00), post-index (01), LDTR/STTR (10), pre-index (11): signed imm9."""
    op4 = bits(insn, 11, 10)
    if (bits(insn, 31, 30), bits(insn, 23, 22)) == PRFM:
        return goto(pc + 4) if op4 == 0b00 else cpu.undefined_op(insn, pc)  # PRFUM
    return _immediate(cpu, insn, pc, sign_extend(bits(insn, 20, 12), 9), _IMM9_INDEX[op4])


@TABLE.add("ss 111 0 00 oo 1 mmmmm ooo S 10 nnnnn ttttt", "ldst_regoff")
def ldst_register_offset(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 LDR/STR (register): [Xn|SP, Rm, extend #(S ? size : 0)]."""
    size, opc, t = bits(insn, 31, 30), bits(insn, 23, 22), bits(insn, 4, 0)
    option, n, m = bits(insn, 15, 13), bits(insn, 9, 5), bits(insn, 20, 16)
    if (size, opc) == PRFM:
        return goto(pc + 4) if option & 0b010 else cpu.undefined_op(insn, pc)
    single = _SINGLES.get((size, opc))
    if single is None:
        return cpu.undefined_op(insn, pc)
    shift = size if insn & (1 << 12) else 0
    op = register_offset(cpu, pc, n, m, option, shift, _transfer(cpu, single, size, t))
    if op is None:
        return cpu.undefined_op(insn, pc)
    return with_syndrome(op, size, single.signed, t, single.sf)


# opc of LDR (literal) -> (access size log2, signed, X register); opc 11 is PRFM (literal).
_LITERALS = {0b00: (2, False, False), 0b01: (3, False, True), 0b10: (2, True, True)}


@TABLE.add("oo 011 0 00 iiiiiiiiiiiiiiiiiii ttttt", "ldr_literal")
def ldr_literal(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 LDR (literal), LDRSW (literal), PRFM (literal)."""
    opc, t = bits(insn, 31, 30), bits(insn, 4, 0)
    if opc == 0b11:
        return goto(pc + 4)
    size, signed, sf = _LITERALS[opc]
    xfer = _transfer(cpu, Single(True, signed, sf), size, t)
    op = literal(pc, sign_extend(bits(insn, 23, 5), 19) << 2, xfer)
    return with_syndrome(op, size, signed, t, sf)
