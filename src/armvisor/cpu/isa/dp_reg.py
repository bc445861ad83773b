"""Data processing -- register (Arm ARM C4.1.95).

Logical (shifted register), add/subtract (shifted and extended register), add/subtract with
carry, conditional compare, conditional select, data-processing (1, 2 and 3 source). The
optional extensions of these groups (FEAT_FlagM RMIF/SETF, FEAT_PAuth, FEAT_MTE, FEAT_CSSC) are
not implemented and, like every unallocated encoding here, UNDEFINED.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from armvisor.arch.pstate import CONDITION_TABLE
from armvisor.cpu.decoder import DecodeTable, Op, bits
from armvisor.cpu.isa.alu import (
    CRC32_TABLE,
    CRC32C_TABLE,
    SCRATCH,
    WIDTH_MASK,
    Binary,
    Operand,
    add_sub_flags,
    add_with_carry,
    asrv,
    count_leading_sign_bits,
    count_leading_zeros,
    crc32,
    extend_operand,
    lslv,
    lsrv,
    reverse_bits,
    reverse_bytes,
    rorv,
    sdiv,
    sf_fields,
    shift_operand,
    udiv,
    use_sp,
    write_index,
)
from armvisor.cpu.state import MASK32, MASK64, ZR_WRITE, CpuState

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu

TABLE = DecodeTable("dp_reg")


def _rm(insn: int) -> int:
    return bits(insn, 20, 16)


# -- C4.1.95.3 Logical (shifted register) --------------------------------------------------------

def _move(x: list[int], d: int, m: int, mask: int, npc: int) -> Op:
    """MOV (register): Rd = Rm."""

    def op(s: CpuState) -> int:
        x[d] = x[m] & mask
        return npc

    return op


def _logical(x: list[int], d: int, n: int, m: int, operand: Operand, inv: int,
             fn: Callable[[int, int], int], mask: int, npc: int) -> Op:
    """Rd = fn(Rn, operand(Rm) EOR inv)."""

    def op(s: CpuState) -> int:
        x[d] = fn(x[n], operand(x[m]) ^ inv) & mask
        return npc

    return op


def _logical_unshifted(x: list[int], d: int, n: int, m: int, inv: int, fn: Callable[[int, int], int],
                       mask: int, npc: int) -> Op:
    """Rd = fn(Rn, Rm EOR inv): the common case of no shift, without an operand call."""

    def op(s: CpuState) -> int:
        x[d] = fn(x[n], x[m] ^ inv) & mask
        return npc

    return op


def _ands(x: list[int], d: int, n: int, m: int, operand: Operand, inv: int, width: int, npc: int) -> Op:
    """ANDS/BICS: Rd = Rn AND (operand(Rm) EOR inv), setting N and Z and clearing C and V."""
    n_shift = width - 4

    def op(s: CpuState) -> int:
        r = x[n] & (operand(x[m]) ^ inv)
        x[d] = r
        s.nzcv = ((r >> n_shift) & 8) | (0 if r else 4)
        return npc

    return op


_LOGICAL_OPS = (operator.and_, operator.or_, operator.xor)


@TABLE.add("xxx0 1010 xxxx xxxx xxxx xxxx xxxx xxxx", "logical (shifted register)")
def build_logical_reg(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 AND, BIC, ORR, ORN, EOR, EON,
    ANDS, BICS (shifted register), LSL/LSR/ASR/ROR #imm6 of Rm."""
    width, mask, n, d = sf_fields(insn)
    d = write_index(d)
    m = _rm(insn)
    opc = bits(insn, 30, 29)
    inv = mask * ((insn >> 21) & 1)
    imm6 = bits(insn, 15, 10)
    if imm6 >= width:
        return cpu.undefined_op(insn, pc)
    x = cpu.state.x
    npc = pc + 4
    if opc == 3:
        return _ands(x, d, n, m, shift_operand(bits(insn, 23, 22), imm6, width), inv, width, npc)
    if imm6:
        operand = shift_operand(bits(insn, 23, 22), imm6, width)
        return _logical(x, d, n, m, operand, inv, _LOGICAL_OPS[opc], mask, npc)
    if opc == 1 and n == 31 and not inv:
        return _move(x, d, m, mask, npc)
    return _logical_unshifted(x, d, n, m, inv, _LOGICAL_OPS[opc], mask, npc)


# -- C4.1.95.4/5 Add/subtract (shifted register, extended register) ------------------------------

def _add_sub_plain(x: list[int], d: int, n: int, m: int, sub: int, mask: int, npc: int) -> Op:
    """ADD/SUB (shifted register) with no shift and no flags."""
    if sub:

        def sub_op(s: CpuState) -> int:
            x[d] = (x[n] - x[m]) & mask
            return npc

        return sub_op

    def add_op(s: CpuState) -> int:
        x[d] = (x[n] + x[m]) & mask
        return npc

    return add_op


def _add_sub_operand(x: list[int], d: int, n: int, m: int, operand: Operand, sub: int, setflags: int,
                     width: int, npc: int) -> Op:
    """Rd = Rn + operand(Rm) or Rn - operand(Rm), setting NZCV if ``setflags``."""
    mask = WIDTH_MASK[width]
    inv = mask * sub
    if setflags:

        def flags_op(s: CpuState) -> int:
            x[d], s.nzcv = add_with_carry(x[n] & mask, operand(x[m]) ^ inv, sub, width)
            return npc

        return flags_op

    def op(s: CpuState) -> int:
        x[d] = (x[n] + (operand(x[m]) ^ inv) + sub) & mask
        return npc

    return op


@TABLE.add("xxx0 1011 xx0x xxxx xxxx xxxx xxxx xxxx", "add/subtract (shifted register)")
def build_add_sub_shifted(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 ADD, ADDS, SUB, SUBS (shifted register): LSL, LSR or
    ASR #imm6 of Rm (ROR is reserved)."""
    width, mask, n, d = sf_fields(insn)
    m = _rm(insn)
    sub = (insn >> 30) & 1
    setflags = (insn >> 29) & 1
    shift_type = bits(insn, 23, 22)
    imm6 = bits(insn, 15, 10)
    if shift_type == 3 or imm6 >= width:
        return cpu.undefined_op(insn, pc)
    x = cpu.state.x
    if imm6:
        operand = shift_operand(shift_type, imm6, width)
        return _add_sub_operand(x, write_index(d), n, m, operand, sub, setflags, width, pc + 4)
    if setflags:
        return add_sub_flags(x, write_index(d), n, x, m, sub, width, pc + 4)
    return _add_sub_plain(x, write_index(d), n, m, sub, mask, pc + 4)


@TABLE.add("xxx0 1011 001x xxxx xxxx xxxx xxxx xxxx", "add/subtract (extended register)")
def build_add_sub_extended(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 ADD, ADDS, SUB, SUBS (extended register): UXTB..SXTX
    of Rm, LSL #0..4; Rn is SP, and so is Rd when flags are not set."""
    width, _, n, d = sf_fields(insn)
    setflags = (insn >> 29) & 1
    shift = bits(insn, 12, 10)
    if shift > 4:
        return cpu.undefined_op(insn, pc)
    rd_sp = d == 31 and not setflags
    operand = extend_operand(bits(insn, 15, 13), shift, width)
    x = cpu.state.x
    op = _add_sub_operand(x, SCRATCH if rd_sp else write_index(d), SCRATCH if n == 31 else n, _rm(insn),
                          operand, (insn >> 30) & 1, setflags, width, pc + 4)
    return use_sp(op, x, n == 31, rd_sp)


# -- C4.1.95.7 Add/subtract (with carry) ---------------------------------------------------------

@TABLE.add("xxx1 1010 000x xxxx 0000 00xx xxxx xxxx", "ADC/ADCS/SBC/SBCS")
def build_add_sub_carry(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 ADC, ADCS, SBC, SBCS: Rn + Rm (or NOT Rm) + C."""
    width, mask, n, d = sf_fields(insn)
    d = write_index(d)
    m = _rm(insn)
    inv = mask * ((insn >> 30) & 1)
    x = cpu.state.x
    npc = pc + 4
    if (insn >> 29) & 1:

        def flags_op(s: CpuState) -> int:
            x[d], s.nzcv = add_with_carry(x[n] & mask, (x[m] & mask) ^ inv, (s.nzcv >> 1) & 1, width)
            return npc

        return flags_op

    def op(s: CpuState) -> int:
        x[d] = (x[n] + (x[m] ^ inv) + ((s.nzcv >> 1) & 1)) & mask
        return npc

    return op


# -- C4.1.95.10/11 Conditional compare (register, immediate) -------------------------------------

@TABLE.add("xx11 1010 010x xxxx xxxx x0xx xxx0 xxxx", "CCMN/CCMP")
def build_cond_compare(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 CCMN, CCMP (register, and with bit 11 set immediate): the flags of Rn + Rm (or
    Rn - Rm) if the condition holds, else the immediate NZCV."""
    width, _, n, nzcv = sf_fields(insn)
    nzcv &= 0xF
    holds = CONDITION_TABLE[bits(insn, 15, 12)]
    x = cpu.state.x
    npc = pc + 4
    # The immediate form reads its imm5 from a 1-tuple instead of the register file.
    source, m = ((_rm(insn),), 0) if (insn >> 11) & 1 else (x, _rm(insn))
    compare = add_sub_flags(x, ZR_WRITE, n, source, m, (insn >> 30) & 1, width, npc)

    def op(s: CpuState) -> int:
        if holds[s.nzcv]:
            return compare(s)
        s.nzcv = nzcv
        return npc

    return op


# -- C4.1.95.12 Conditional select ---------------------------------------------------------------

@TABLE.add("xx01 1010 100x xxxx xxxx 0xxx xxxx xxxx", "CSEL/CSINC/CSINV/CSNEG")
def build_cond_select(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 CSEL, CSINC, CSINV, CSNEG: Rd = Rn if the condition
    holds, else Rm, Rm + 1, NOT Rm or -Rm."""
    width, mask, n, d = sf_fields(insn)
    d = write_index(d)
    m = _rm(insn)
    inv = mask * ((insn >> 30) & 1)
    inc = (insn >> 10) & 1
    holds = CONDITION_TABLE[bits(insn, 15, 12)]
    x = cpu.state.x
    npc = pc + 4

    def op(s: CpuState) -> int:
        x[d] = (x[n] if holds[s.nzcv] else (x[m] ^ inv) + inc) & mask
        return npc

    return op


# -- C4.1.95.2 Data-processing (1 source) --------------------------------------------------------

def _unary(x: list[int], d: int, n: int, fn: Operand, mask: int, npc: int) -> Op:
    """Rd = fn(Rn)."""

    def op(s: CpuState) -> int:
        x[d] = fn(x[n] & mask)
        return npc

    return op


# (datasize, opcode) -> the operation
_ONE_SOURCE: dict[tuple[int, int], Operand] = {
    (width, opcode): fn
    for width in (32, 64)
    for opcode, fn in (
        (0b000000, reverse_bits(width)),  # RBIT
        (0b000001, reverse_bytes(16, width)),  # REV16
        (0b000010, reverse_bytes(32, width)),  # REV (32-bit), REV32 (64-bit)
        (0b000011, reverse_bytes(64, width)),  # REV (64-bit)
        (0b000100, count_leading_zeros(width)),  # CLZ
        (0b000101, count_leading_sign_bits(width)),  # CLS
    )
    if opcode != 0b000011 or width == 64
}


@TABLE.add("x101 1010 1100 0000 000x xxxx xxxx xxxx", "data-processing (1 source)")
def build_one_source(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 RBIT, REV16, REV32, REV, CLZ, CLS."""
    width, mask, n, d = sf_fields(insn)
    fn = _ONE_SOURCE.get((width, bits(insn, 15, 10)))
    if fn is None:
        return cpu.undefined_op(insn, pc)
    return _unary(cpu.state.x, write_index(d), n, fn, mask, pc + 4)


# -- C4.1.95.1 Data-processing (2 source) --------------------------------------------------------

def _binary(x: list[int], d: int, n: int, m: int, fn: Binary, mask: int, npc: int) -> Op:
    """Rd = fn(Rn, Rm)."""

    def op(s: CpuState) -> int:
        x[d] = fn(x[n] & mask, x[m] & mask)
        return npc

    return op


def _crc(table: tuple[int, ...], size: int, width: int) -> Binary:
    """CRC32*/CRC32C* as a datasize-indexed factory (the data size is ``size``, not width)."""
    return crc32(table, size)


# opcode -> factory of the operation for a datasize
_TWO_SOURCE: dict[int, Callable[[int], Binary]] = {
    0b000010: udiv,
    0b000011: sdiv,
    0b001000: lslv,
    0b001001: lsrv,
    0b001010: asrv,
    0b001011: rorv,
    **{0b010000 | (c << 2) | sz: partial(_crc, table, 1 << sz)
       for c, table in enumerate((CRC32_TABLE, CRC32C_TABLE)) for sz in range(4)},
}


@TABLE.add("x001 1010 110x xxxx xxxx xxxx xxxx xxxx", "data-processing (2 source)")
def build_two_source(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 UDIV, SDIV, LSLV, LSRV, ASRV, RORV,
    CRC32B/H/W/X, CRC32CB/H/W/X (X forms only, and only they, with sf=1)."""
    width, mask, n, d = sf_fields(insn)
    opcode = bits(insn, 15, 10)
    factory = _TWO_SOURCE.get(opcode)
    is_crc = opcode >> 4 == 1
    if factory is None or (is_crc and (opcode & 3 == 3) != (width == 64)):
        return cpu.undefined_op(insn, pc)
    return _binary(cpu.state.x, write_index(d), n, _rm(insn), factory(width), mask, pc + 4)


# -- C4.1.95.13 Data-processing (3 source) -------------------------------------------------------

def _three_source_fields(insn: int) -> tuple[int, int, int, int, int]:
    """(Rd written, Rn, Rm, Ra, +1 for the add forms or -1 for the subtract forms)."""
    return write_index(insn & 31), bits(insn, 9, 5), _rm(insn), bits(insn, 14, 10), 1 - 2 * ((insn >> 15) & 1)


@TABLE.add("x001 1011 000x xxxx xxxx xxxx xxxx xxxx", "MADD/MSUB")
def build_madd(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 MADD, MSUB (and MUL, MNEG): Rd = Ra +/- Rn * Rm."""
    d, n, m, a, sign = _three_source_fields(insn)
    mask = MASK64 if insn >> 31 else MASK32
    x = cpu.state.x
    npc = pc + 4

    def op(s: CpuState) -> int:
        x[d] = (x[a] + sign * x[n] * x[m]) & mask
        return npc

    return op


@TABLE.add("1001 1011 x01x xxxx xxxx xxxx xxxx xxxx", "SMADDL/SMSUBL/UMADDL/UMSUBL")
def build_maddl(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 SMADDL, SMSUBL, UMADDL, UMSUBL (and SMULL, SMNEGL,
    UMULL, UMNEGL): Xd = Xa +/- Wn * Wm, signed or unsigned."""
    d, n, m, a, sign = _three_source_fields(insn)
    sign_bit = 0 if (insn >> 23) & 1 else 1 << 31
    x = cpu.state.x
    npc = pc + 4

    def op(s: CpuState) -> int:
        product = (((x[n] & MASK32) ^ sign_bit) - sign_bit) * (((x[m] & MASK32) ^ sign_bit) - sign_bit)
        x[d] = (x[a] + sign * product) & MASK64
        return npc

    return op


@TABLE.add("1001 1011 x10x xxxx 0xxx xxxx xxxx xxxx", "SMULH/UMULH")
def build_mulh(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 SMULH, UMULH: Xd = (Xn * Xm)<127:64>, signed or unsigned."""
    d, n, m, _, _ = _three_source_fields(insn)
    sign_bit = 0 if (insn >> 23) & 1 else 1 << 63
    x = cpu.state.x
    npc = pc + 4

    def op(s: CpuState) -> int:
        x[d] = (((x[n] ^ sign_bit) - sign_bit) * ((x[m] ^ sign_bit) - sign_bit) >> 64) & MASK64
        return npc

    return op
