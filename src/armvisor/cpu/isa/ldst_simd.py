"""SIMD&FP loads and stores (Arm ARM C4.1.88 with V=1, and the AdvSIMD structure loads and
stores): decoded only far enough to tell allocated encodings, which go to
:func:`~armvisor.cpu.isa.fp.fp_access_op` (FP trap or UNDEFINED), from unallocated ones
(UNDEFINED whatever CPACR_EL1 says).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from armvisor.cpu.decoder import DecodeTable, Op, bits
from armvisor.cpu.isa.fp import fp_access_op

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu

TABLE = DecodeTable("ldst_simd")

# LD1..LD4/ST1..ST4 (multiple structures) opcode -> number of structure elements.
_MULTIPLE_SELEM = {0b0000: 4, 0b0010: 1, 0b0100: 3, 0b0110: 1, 0b0111: 1, 0b1000: 2, 0b1010: 1}


def _fp_or_undefined(cpu: "Cpu", insn: int, pc: int, allocated: bool) -> Op:
    return fp_access_op(cpu, insn, pc) if allocated else cpu.undefined_op(insn, pc)


@TABLE.add("0Q 0011000 L 000000 oooo ss nnnnn ttttt", "simd_ldst_multiple")
@TABLE.add("0Q 0011001 L 0 mmmmm oooo ss nnnnn ttttt", "simd_ldst_multiple_post")
def simd_multiple(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C7.2 LD1-LD4/ST1-ST4 (multiple structures): size:Q = 110 is reserved unless selem=1."""
    selem = _MULTIPLE_SELEM.get(bits(insn, 15, 12))
    reserved = bits(insn, 11, 10) == 0b11 and not insn & (1 << 30) and selem != 1
    return _fp_or_undefined(cpu, insn, pc, selem is not None and not reserved)


def _single_allocated(insn: int) -> bool:
    """Which opcode/S/size combinations of a single-structure access exist (Arm ARM C4.1.88,
    Advanced SIMD load/store single structure)."""
    opcode, s, size = bits(insn, 15, 13), bits(insn, 12, 12), bits(insn, 11, 10)
    kind = opcode >> 1
    if kind == 0b00:  # B
        return True
    if kind == 0b01:  # H
        return not size & 1
    if kind == 0b10:  # S (size 00) or D (size 01, S=0)
        return size == 0b00 or (size == 0b01 and not s)
    return bool(insn & (1 << 22)) and not s  # LD1R..LD4R


@TABLE.add("0Q 0011010 L R 00000 ooo S ss nnnnn ttttt", "simd_ldst_single")
@TABLE.add("0Q 0011011 L R mmmmm ooo S ss nnnnn ttttt", "simd_ldst_single_post")
def simd_single(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C7.2 LD1-LD4/ST1-ST4 (single structure) and LD1R-LD4R."""
    return _fp_or_undefined(cpu, insn, pc, _single_allocated(insn))


def _register_allocated(insn: int) -> bool:
    """size:opc of LDR/STR (SIMD&FP): B/H/S/D for opc 0x, Q only as size 00 with opc 1x."""
    return not insn & (1 << 23) or bits(insn, 31, 30) == 0b00


@TABLE.add("ss 111 1 01 oo iiiiiiiiiiii nnnnn ttttt", "simd_ldst_uimm")
def simd_unsigned_offset(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C7.2 LDR/STR (immediate, SIMD&FP), unsigned offset."""
    return _fp_or_undefined(cpu, insn, pc, _register_allocated(insn))


@TABLE.add("ss 111 1 00 oo 0 iiiiiiiii ww nnnnn ttttt", "simd_ldst_imm9")
def simd_imm9(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C7.2 LDUR/STUR and pre-/post-indexed LDR/STR (SIMD&FP); no unprivileged form."""
    allocated = _register_allocated(insn) and bits(insn, 11, 10) != 0b10
    return _fp_or_undefined(cpu, insn, pc, allocated)


@TABLE.add("ss 111 1 00 oo 1 mmmmm ooo S 10 nnnnn ttttt", "simd_ldst_regoff")
def simd_register_offset(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C7.2 LDR/STR (register, SIMD&FP); option<1> == 0 is reserved."""
    allocated = _register_allocated(insn) and bool(insn & (1 << 14))
    return _fp_or_undefined(cpu, insn, pc, allocated)


@TABLE.add("oo 011 1 00 iiiiiiiiiiiiiiiiiii ttttt", "simd_ldr_literal")
@TABLE.add("oo 101 1 0 mm L iiiiiii uuuuu nnnnn ttttt", "simd_ldst_pair")
def simd_literal_or_pair(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C7.2 LDR (literal, SIMD&FP) and LDP/STP/LDNP/STNP (SIMD&FP): opc S/D/Q, 11 unallocated."""
    return _fp_or_undefined(cpu, insn, pc, bits(insn, 31, 30) != 0b11)
