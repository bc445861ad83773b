"""Data processing -- immediate (Arm ARM C4.1.86).

PC-relative addressing, add/subtract (immediate), logical (immediate), move wide, bitfield and
extract. Add/subtract (immediate, with tags) and min/max (immediate) are not implemented
(FEAT_MTE, FEAT_CSSC) and, like every other unallocated encoding here, UNDEFINED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from armvisor.cpu.decoder import DecodeTable, Op, bits, sign_extend
from armvisor.cpu.isa.alu import (
    SCRATCH,
    WIDTH_MASK,
    add_sub_flags,
    decode_bit_masks,
    sf_fields,
    use_sp,
    write_index,
)
from armvisor.cpu.state import MASK64, CpuState

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu

TABLE = DecodeTable("dp_imm")


# -- closures shared by several encodings --------------------------------------------------------

def _set_const(x: list[int], d: int, value: int, npc: int) -> Op:
    """X[d] = a decode-time constant."""

    def op(s: CpuState) -> int:
        x[d] = value
        return npc

    return op


def _insert_const(x: list[int], d: int, d_write: int, keep: int, value: int, npc: int) -> Op:
    """Rd = (Rd AND keep) OR value (Rd read as X[d], written as X[d_write])."""

    def op(s: CpuState) -> int:
        x[d_write] = (x[d] & keep) | value
        return npc

    return op


# -- C4.1.86.1 PC-rel. addressing --------------------------------------------------------------

@TABLE.add("0xx1 0000 xxxx xxxx xxxx xxxx xxxx xxxx", "ADR")
def build_adr(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 ADR: Rd = PC + imm."""
    imm = sign_extend((bits(insn, 23, 5) << 2) | bits(insn, 30, 29), 21)
    return _set_const(cpu.state.x, write_index(insn & 31), (pc + imm) & MASK64, pc + 4)


@TABLE.add("1xx1 0000 xxxx xxxx xxxx xxxx xxxx xxxx", "ADRP")
def build_adrp(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 ADRP: Rd = the 4KB page of PC + imm * 4096."""
    imm = sign_extend((bits(insn, 23, 5) << 2) | bits(insn, 30, 29), 21)
    return _set_const(cpu.state.x, write_index(insn & 31), ((pc & ~0xFFF) + (imm << 12)) & MASK64, pc + 4)


# -- C4.1.86.3 Add/subtract (immediate) ----------------------------------------------------------

def _add_const(x: list[int], d: int, n: int, k: int, mask: int, npc: int) -> Op:
    """Rd|SP = (Rn|SP + k) mod 2^datasize; register field 31 is SP on both sides."""
    if n == 31 and d == 31:

        def sp_op(s: CpuState) -> int:
            s.sp = (s.sp + k) & mask
            return npc

        return sp_op
    if n == 31:

        def from_sp(s: CpuState) -> int:
            x[d] = (s.sp + k) & mask
            return npc

        return from_sp
    if d == 31:

        def to_sp(s: CpuState) -> int:
            s.sp = (x[n] + k) & mask
            return npc

        return to_sp

    def op(s: CpuState) -> int:
        x[d] = (x[n] + k) & mask
        return npc

    return op


@TABLE.add("xxx1 0001 0xxx xxxx xxxx xxxx xxxx xxxx", "ADD/ADDS/SUB/SUBS (immediate)")
def build_add_sub_imm(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 ADD, ADDS, SUB, SUBS (immediate): imm12, LSL #0 or #12;
    SP may be Rn, and Rd when flags are not set."""
    width, mask, n, d = sf_fields(insn)
    sub = (insn >> 30) & 1
    imm = bits(insn, 21, 10) << (12 * ((insn >> 22) & 1))
    x = cpu.state.x
    if not (insn >> 29) & 1:
        return _add_const(x, d, n, (-imm if sub else imm) & mask, mask, pc + 4)
    op = add_sub_flags(x, write_index(d), SCRATCH if n == 31 else n, (imm,), 0, sub, width, pc + 4)
    return use_sp(op, x, n == 31, False)


# -- C4.1.86.5 Logical (immediate) ---------------------------------------------------------------

def _and_xor_const(x: list[int], d: int, n: int, a: int, b: int, npc: int) -> Op:
    """Rd = (Rn AND a) EOR b: AND, ORR and EOR with a constant all take this form."""

    def op(s: CpuState) -> int:
        x[d] = (x[n] & a) ^ b
        return npc

    return op


def _ands_const(x: list[int], d: int, n: int, imm: int, width: int, npc: int) -> Op:
    """Rd = Rn AND imm, setting N and Z and clearing C and V."""
    n_shift = width - 4

    def op(s: CpuState) -> int:
        r = x[n] & imm
        x[d] = r
        s.nzcv = ((r >> n_shift) & 8) | (0 if r else 4)
        return npc

    return op


# opc -> (a, b) such that Rn <op> imm == (Rn AND a) EOR b, for AND, ORR, EOR.
_LOGICAL_IMM_FORM = (
    lambda imm, mask: (imm, 0),
    lambda imm, mask: (mask ^ imm, imm),
    lambda imm, mask: (mask, imm),
)


@TABLE.add("xxx1 0010 0xxx xxxx xxxx xxxx xxxx xxxx", "AND/ORR/EOR/ANDS (immediate)")
def build_logical_imm(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 AND, ORR, EOR, ANDS (immediate): a bitmask immediate;
    Rd may be SP except for ANDS."""
    width, mask, n, d = sf_fields(insn)
    opc = bits(insn, 30, 29)
    big_n = (insn >> 22) & 1
    if big_n and width == 32:
        return cpu.undefined_op(insn, pc)
    masks = decode_bit_masks(big_n, bits(insn, 15, 10), bits(insn, 21, 16), True, width)
    if masks is None:
        return cpu.undefined_op(insn, pc)
    imm = masks[0]
    x = cpu.state.x
    if opc == 3:
        return _ands_const(x, write_index(d), n, imm, width, pc + 4)
    a, b = _LOGICAL_IMM_FORM[opc](imm, mask)
    return use_sp(_and_xor_const(x, SCRATCH if d == 31 else d, n, a, b, pc + 4), x, False, d == 31)


# -- C4.1.86.6 Move wide (immediate) -------------------------------------------------------------

def _move_wide_fields(insn: int) -> tuple[int, int, int, int] | None:
    """(mask, imm16, shift, Rd) of MOVN/MOVZ/MOVK, or None where hw is reserved."""
    width, mask, _, d = sf_fields(insn)
    shift = 16 * bits(insn, 22, 21)
    if shift >= width:
        return None
    return mask, bits(insn, 20, 5), shift, d


@TABLE.add("x001 0010 1xxx xxxx xxxx xxxx xxxx xxxx", "MOVN")
def build_movn(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 MOVN: Rd = NOT(imm16 << shift)."""
    fields = _move_wide_fields(insn)
    if fields is None:
        return cpu.undefined_op(insn, pc)
    mask, imm16, shift, d = fields
    return _set_const(cpu.state.x, write_index(d), mask ^ (imm16 << shift), pc + 4)


@TABLE.add("x101 0010 1xxx xxxx xxxx xxxx xxxx xxxx", "MOVZ")
def build_movz(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 MOVZ: Rd = imm16 << shift."""
    fields = _move_wide_fields(insn)
    if fields is None:
        return cpu.undefined_op(insn, pc)
    _, imm16, shift, d = fields
    return _set_const(cpu.state.x, write_index(d), imm16 << shift, pc + 4)


@TABLE.add("x111 0010 1xxx xxxx xxxx xxxx xxxx xxxx", "MOVK")
def build_movk(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 MOVK: replace one halfword of Rd, keeping the others (a W result is
    zero-extended)."""
    fields = _move_wide_fields(insn)
    if fields is None:
        return cpu.undefined_op(insn, pc)
    mask, imm16, shift, d = fields
    return _insert_const(cpu.state.x, d, write_index(d), mask & ~(0xFFFF << shift), imm16 << shift, pc + 4)


# -- C4.1.86.7 Bitfield --------------------------------------------------------------------------

def _sbfm(x: list[int], d: int, n: int, right: int, field: int, left: int, mask: int, npc: int) -> Op:
    """SBFM: Rd = SignExtend((Rn >> right) AND field) << left."""
    sign = (field + 1) >> 1

    def op(s: CpuState) -> int:
        x[d] = (((((x[n] >> right) & field) ^ sign) - sign) << left) & mask
        return npc

    return op


def _bfm(x: list[int], d: int, d_write: int, n: int, right: int, field: int, left: int, mask: int,
         npc: int) -> Op:
    """BFM: ((Rn >> right) AND field) << left inserted into Rd (read X[d], written X[d_write])."""
    keep = mask & ~(field << left)

    def op(s: CpuState) -> int:
        x[d_write] = (x[d] & keep) | (((x[n] >> right) & field) << left)
        return npc

    return op


def _ubfm(x: list[int], d: int, n: int, right: int, field: int, left: int, npc: int) -> Op:
    """UBFM: Rd = ((Rn >> right) AND field) << left."""

    def op(s: CpuState) -> int:
        x[d] = ((x[n] >> right) & field) << left
        return npc

    return op


@TABLE.add("xxx1 0011 0xxx xxxx xxxx xxxx xxxx xxxx", "SBFM/BFM/UBFM")
def build_bitfield(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 SBFM, BFM, UBFM (and their aliases ASR, LSL, LSR, SBFIZ,
    SBFX, SXTB/H/W, BFC, BFI, BFXIL, UBFIZ, UBFX, UXTB/H).

    With DecodeBitMasks(immediate=FALSE), wmask AND tmask selects either Rn<imms:immr> moved to
    bit 0 (imms >= immr: the ...FX/...FXIL forms) or Rn<imms:0> moved to bit datasize-immr (the
    ...FIZ/BFI forms); SBFM sign-extends that field, BFM keeps the other bits of Rd."""
    width, mask, n, d = sf_fields(insn)
    opc = bits(insn, 30, 29)
    immr = bits(insn, 21, 16)
    imms = bits(insn, 15, 10)
    if opc == 3 or (insn >> 22) & 1 != width >> 6 or (width == 32 and (immr | imms) & 0x20):
        return cpu.undefined_op(insn, pc)
    if imms >= immr:
        right, length, left = immr, imms - immr + 1, 0
    else:
        right, length, left = 0, imms + 1, width - immr
    field = (1 << length) - 1
    x = cpu.state.x
    npc = pc + 4
    if opc == 0:
        return _sbfm(x, write_index(d), n, right, field, left, mask, npc)
    if opc == 1:
        return _bfm(x, d, write_index(d), n, right, field, left, mask, npc)
    return _ubfm(x, write_index(d), n, right, field, left, npc)


# -- C4.1.86.8 Extract ---------------------------------------------------------------------------

def _extract(x: list[int], d: int, n: int, m: int, lsb: int, width: int, npc: int) -> Op:
    """Rd = (Rn:Rm)<lsb+datasize-1:lsb>."""
    mask = WIDTH_MASK[width]

    def op(s: CpuState) -> int:
        x[d] = ((((x[n] & mask) << width) | (x[m] & mask)) >> lsb) & mask
        return npc

    return op


@TABLE.add("x001 0011 1x0x xxxx xxxx xxxx xxxx xxxx", "EXTR")
def build_extr(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 EXTR (and its alias ROR (immediate))."""
    width, _, n, d = sf_fields(insn)
    lsb = bits(insn, 15, 10)
    if (insn >> 22) & 1 != width >> 6 or lsb >= width:
        return cpu.undefined_op(insn, pc)
    return _extract(cpu.state.x, write_index(d), n, bits(insn, 20, 16), lsb, width, pc + 4)
