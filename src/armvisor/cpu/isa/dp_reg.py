"""Data processing -- register (Arm ARM C4.1.95).

Logical (shifted register), add/subtract (shifted and extended register), add/subtract with
carry, conditional compare, conditional select, data-processing (1, 2 and 3 source). The
optional extensions of these groups (FEAT_FlagM RMIF/SETF, FEAT_PAuth, FEAT_MTE, FEAT_CSSC) are
not implemented and, like every unallocated encoding here, UNDEFINED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from armvisor.cpu.decoder import DecodeTable, Op, bits
from armvisor.cpu.emit import Emitted, emitted, emitter
from armvisor.cpu.isa.alu import (
    CARRY_IN,
    CRC32_TABLE,
    CRC32C_TABLE,
    NZ_FLAGS,
    UNSHIFTED,
    add_sub_flags_code,
    condition_mask,
    extended_code,
    indent,
    replicate,
    sf_fields,
    shifted_code,
    write_index,
)
from armvisor.cpu.state import MASK32, MASK64, CpuState

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu

TABLE = DecodeTable("dp_reg")


def _rm(insn: int) -> int:
    return bits(insn, 20, 16)


# -- C4.1.95.3 Logical (shifted register) --------------------------------------------------------

# Rd = Rn <op> operand, by opc (AND, ORR, EOR): the operand is a width-bit value, so AND needs
# no final mask.
_LOGICAL = ("x[{d}] = x[{n}] & ", "x[{d}] = (x[{n}] | {operand}) & {mask}", "x[{d}] = (x[{n}] ^ {operand}) & {mask}")


@TABLE.add("xxx0 1010 xxxx xxxx xxxx xxxx xxxx xxxx", "logical (shifted register)")
@emitter
def emit_logical_reg(insn: int, pc: int) -> Emitted | None:
    """C6.2 AND, BIC, ORR, ORN, EOR, EON, ANDS, BICS (shifted register) (and MOV (register),
    MVN, TST (shifted register)): LSL/LSR/ASR/ROR #imm6 of Rm, inverted for BIC, ORN, EON,
    BICS."""
    width, mask, n, d = sf_fields(insn)
    m = _rm(insn)
    opc = bits(insn, 30, 29)
    imm6 = bits(insn, 15, 10)
    if imm6 >= width:
        return None
    operand, consts = shifted_code(bits(insn, 23, 22), imm6, width)
    if (insn >> 21) & 1:
        operand = "(" + operand + " ^ {mask})"
    if opc == 3:
        code = "r_ = x[{n}] & " + operand + "\n" + ("" if d == 31 else "x[{d}] = r_\n") + NZ_FLAGS
        return emitted(pc, code, d=d, n=n, m=m, mask=mask, top=width - 1, **consts)
    if opc == 1 and n == 31 and operand == UNSHIFTED:
        return emitted(pc, "x[{d}] = x[{m}] & {mask}", d=write_index(d), m=m, mask=mask)  # MOV
    if opc == 0:
        code = _LOGICAL[0] + operand
    else:
        code = _LOGICAL[opc].replace("{operand}", operand)
    return emitted(pc, code, d=write_index(d), n=n, m=m, mask=mask, **consts)


# -- C4.1.95.4/5 Add/subtract (shifted register, extended register) ------------------------------

# Register field 31 names SP (the extended register form's Rn, and its Rd when flags are not
# set): the register's text.
_RN = ("x[{n}]", "s.sp")
_RD = ("x[{d}]", "s.sp")
_ADD_SUB = (" + ", " - ")


def _add_sub(pc: int, insn: int, operand: str, consts: dict[str, int], n_sp: bool, d_sp: bool) -> Emitted:
    """Rd = Rn + operand or Rn - operand (bit 30), setting NZCV if bit 29 is set (then Rd = 31
    is XZR and not written: CMP, CMN); ``operand`` a width-bit expression."""
    width, mask, n, d = sf_fields(insn)
    sub = (insn >> 30) & 1
    rn = _RN[n_sp]
    if (insn >> 29) & 1:
        code = add_sub_flags_code(rn + " & {mask}", operand, bool(sub), "" if d == 31 else "x[{d}]")
        return emitted(pc, code, d=d, n=n, m=_rm(insn), mask=mask, top=width - 1, **consts)
    code = _RD[d_sp] + " = (" + rn + _ADD_SUB[sub] + operand + ") & {mask}"
    return emitted(pc, code, d=write_index(d), n=n, m=_rm(insn), mask=mask, **consts)


@TABLE.add("xxx0 1011 xx0x xxxx xxxx xxxx xxxx xxxx", "add/subtract (shifted register)")
@emitter
def emit_add_sub_shifted(insn: int, pc: int) -> Emitted | None:
    """C6.2 ADD, ADDS, SUB, SUBS (shifted register) (and CMN, CMP, NEG, NEGS): LSL, LSR or
    ASR #imm6 of Rm (ROR is reserved)."""
    width = 64 if insn >> 31 else 32
    shift_type = bits(insn, 23, 22)
    imm6 = bits(insn, 15, 10)
    if shift_type == 3 or imm6 >= width:
        return None
    operand, consts = shifted_code(shift_type, imm6, width)
    if operand == UNSHIFTED and not (insn >> 29) & 1:
        operand = "x[{m}]"  # the result is masked anyway
    return _add_sub(pc, insn, operand, consts, False, False)


@TABLE.add("xxx0 1011 001x xxxx xxxx xxxx xxxx xxxx", "add/subtract (extended register)")
@emitter
def emit_add_sub_extended(insn: int, pc: int) -> Emitted | None:
    """C6.2 ADD, ADDS, SUB, SUBS (extended register) (and CMN, CMP): UXTB..SXTX
    of Rm, LSL #0..4; Rn is SP, and so is Rd when flags are not set."""
    shift = bits(insn, 12, 10)
    if shift > 4:
        return None
    operand, consts = extended_code(bits(insn, 15, 13), shift)
    return _add_sub(pc, insn, operand, consts, bits(insn, 9, 5) == 31,
                    insn & 31 == 31 and not (insn >> 29) & 1)


# -- C4.1.95.7 Add/subtract (with carry) ---------------------------------------------------------

@TABLE.add("xxx1 1010 000x xxxx 0000 00xx xxxx xxxx", "ADC/ADCS/SBC/SBCS")
@emitter
def emit_add_sub_carry(insn: int, pc: int) -> Emitted:
    """C6.2 ADC, ADCS, SBC, SBCS (and NGC, NGCS): Rn + Rm (or NOT Rm) + C."""
    width, mask, n, d = sf_fields(insn)
    inv = mask * ((insn >> 30) & 1)
    if (insn >> 29) & 1:
        code = add_sub_flags_code("x[{n}] & {mask}", "x[{m}] & {mask} ^ {inv}", False, "x[{d}]", CARRY_IN)
        return emitted(pc, code, d=write_index(d), n=n, m=_rm(insn), mask=mask, inv=inv, top=width - 1)
    return emitted(pc, "x[{d}] = (x[{n}] + (x[{m}] ^ {inv})" + CARRY_IN + ") & {mask}",
                   d=write_index(d), n=n, m=_rm(insn), mask=mask, inv=inv)


# -- C4.1.95.10/11 Conditional compare (register, immediate) -------------------------------------

_CCMP_OPERAND = ("x[{m}] & {mask}", "{imm}")


@TABLE.add("xx11 1010 010x xxxx xxxx x0xx xxx0 xxxx", "CCMN/CCMP")
@emitter
def emit_cond_compare(insn: int, pc: int) -> Emitted:
    """C6.2 CCMN, CCMP (register, and with bit 11 set immediate): the flags of Rn + Rm (or
    Rn - Rm) if the condition holds, else the immediate NZCV."""
    width, mask, n, nzcv = sf_fields(insn)
    is_imm = (insn >> 11) & 1
    compare = add_sub_flags_code("x[{n}] & {mask}", _CCMP_OPERAND[is_imm], bool((insn >> 30) & 1), "")
    code = "if {holds} >> s.nzcv & 1:\n" + indent(compare) + "\nelse:\n    s.nzcv = {nzcv}"
    operand = {"imm": _rm(insn)} if is_imm else {"m": _rm(insn)}
    return emitted(pc, code, n=n, mask=mask, top=width - 1, nzcv=nzcv & 0xF,
                   holds=condition_mask(bits(insn, 15, 12)), **operand)


# -- C4.1.95.12 Conditional select ---------------------------------------------------------------

# By op:o2 (CSEL, CSINC, CSINV, CSNEG): Rd = Rn if the condition holds, else Rm, Rm + 1, NOT Rm
# or -Rm.
_COND_SELECT = tuple(
    "x[{d}] = (x[{n}] if {holds} >> s.nzcv & 1 else " + otherwise + ") & {mask}"
    for otherwise in ("x[{m}]", "x[{m}] + 1", "x[{m}] ^ {mask}", "-x[{m}]")
)


@TABLE.add("xx01 1010 100x xxxx xxxx 0xxx xxxx xxxx", "CSEL/CSINC/CSINV/CSNEG")
@emitter
def emit_cond_select(insn: int, pc: int) -> Emitted:
    """C6.2 CSEL, CSINC, CSINV, CSNEG (and CINC, CSET, CINV, CSETM, CNEG): Rd = Rn if the
    condition holds, else Rm, Rm + 1, NOT Rm or -Rm."""
    _, mask, n, d = sf_fields(insn)
    code = _COND_SELECT[((insn >> 29) & 2) | ((insn >> 10) & 1)]
    return emitted(pc, code, d=write_index(d), n=n, m=_rm(insn), mask=mask,
                   holds=condition_mask(bits(insn, 15, 12)))


# -- C4.1.95.2 Data-processing (1 source) --------------------------------------------------------

# Swap adjacent lanes of v_: step i exchanges the lanes selected by {ki} with the ones {si} bits
# above them; the last step writes Rd.
_SWAP_STEPS = tuple(f"v_ = (v_ & {{k{i}}}) << {{s{i}}} | v_ >> {{s{i}}} & {{k{i}}}" for i in range(6))
_SWAP_LAST = tuple(f"x[{{d}}] = (v_ & {{k{i}}}) << {{s{i}}} | v_ >> {{s{i}}} & {{k{i}}}" for i in range(6))
_SWAP_CODES = tuple("\n".join(("v_ = x[{n}] & {mask}", *_SWAP_STEPS[:i], _SWAP_LAST[i])) for i in range(6))


def _swap(pc: int, d: int, n: int, mask: int, width: int, first: int, container: int) -> Emitted:
    """Reverse the ``first``-bit lanes inside every ``container``-bit container of Rn: the bits
    for RBIT (first = 1, container = width), the bytes for REV16, REV32, REV (first = 8)."""
    consts = {}
    lane = first
    while lane < container:
        step = len(consts) // 2
        consts[f"k{step}"] = replicate((1 << lane) - 1, 2 * lane, width)
        consts[f"s{step}"] = lane
        lane *= 2
    return emitted(pc, _SWAP_CODES[len(consts) // 2 - 1], d=d, n=n, mask=mask, **consts)


# CountLeadingZeroBits() of the {bits}-bit value v_, by binary search.
_COUNT_LEADING = "\n".join(
    ["r_ = {bits}"]
    + [f"if v_ >> {step}:\n    v_ >>= {step}\n    r_ -= {step}" for step in (32, 16, 8, 4, 2, 1)]
    + ["x[{d}] = r_ - 1 if v_ else r_"]
)
# CLZ; CLS: CLZ of x<N-1:1> EOR x<N-2:0>.
_CLZ = "v_ = x[{n}] & {mask}\n" + _COUNT_LEADING
_CLS = "v_ = (x[{n}] >> 1 ^ x[{n}]) & {mask}\n" + _COUNT_LEADING


@TABLE.add("x101 1010 1100 0000 000x xxxx xxxx xxxx", "data-processing (1 source)")
@emitter
def emit_one_source(insn: int, pc: int) -> Emitted | None:
    """C6.2 RBIT, REV16, REV32, REV, CLZ, CLS (REV with opcode 000011 only with sf=1)."""
    width, mask, n, d = sf_fields(insn)
    d = write_index(d)
    opcode = bits(insn, 15, 10)
    if opcode == 0b000000:  # RBIT
        return _swap(pc, d, n, mask, width, 1, width)
    if opcode <= 0b000011:  # REV16, REV32 / REV (32-bit), REV (64-bit)
        container = 8 << opcode
        return _swap(pc, d, n, mask, width, 8, container) if container <= width else None
    if opcode == 0b000100:
        return emitted(pc, _CLZ, d=d, n=n, mask=mask, bits=width)
    if opcode == 0b000101:
        return emitted(pc, _CLS, d=d, n=n, mask=mask >> 1, bits=width - 1)
    return None


# -- C4.1.95.1 Data-processing (2 source) --------------------------------------------------------

# By opcode: Rd = Rn <op> Rm on width-bit operands ({modulo} = width - 1, {sign} its sign bit).
# SDIV rounds towards zero (INT_MIN / -1 wraps); division by zero gives 0.
_TWO_SOURCE = {
    0b000010: "b_ = x[{m}] & {mask}\nx[{d}] = (x[{n}] & {mask}) // b_ if b_ else 0",  # UDIV
    0b000011: "b_ = ((x[{m}] & {mask} ^ {sign}) - {sign})\n"  # SDIV
                "a_ = ((x[{n}] & {mask} ^ {sign}) - {sign})\n"
                "x[{d}] = ((-(-a_ // b_) if (a_ ^ b_) < 0 else a_ // b_) & {mask}) if b_ else 0",
    0b001000: "x[{d}] = x[{n}] << (x[{m}] & {modulo}) & {mask}",  # LSLV
    0b001001: "x[{d}] = (x[{n}] & {mask}) >> (x[{m}] & {modulo})",  # LSRV
    0b001010: "x[{d}] = ((x[{n}] & {mask} ^ {sign}) - {sign}) >> (x[{m}] & {modulo}) & {mask}",  # ASRV
    0b001011: "a_ = x[{n}] & {mask}\nb_ = x[{m}] & {modulo}\n"  # RORV
                "x[{d}] = (a_ >> b_ | a_ << {modulo} + 1 - b_) & {mask}",
}


@TABLE.add("x001 1010 110x xxxx 010x xxxx xxxx xxxx", "CRC32*/CRC32C*")
def build_crc32(cpu: Cpu, insn: int, pc: int) -> Op:
    """C6.2 CRC32B/H/W/X, CRC32CB/H/W/X (X forms only, and only they, with sf=1): accumulate
    the low ``size`` bytes of Rm into the CRC Wn, without the pre- and post-inversion of zlib's
    crc32(). A closure, not an emitter: it looks up a 256-entry table, which emitted text
    (int constants only, no helper objects) could only index slowly."""
    width, _, n, d = sf_fields(insn)
    opcode = bits(insn, 15, 10)
    size = 1 << (opcode & 3)
    if (size == 8) != (width == 64):
        return cpu.undefined_op(insn, pc)
    table = CRC32C_TABLE if opcode & 4 else CRC32_TABLE
    data = (1 << (8 * size)) - 1
    x = cpu.state.x
    d = write_index(d)
    m = _rm(insn)
    npc = pc + 4

    def op(s: CpuState) -> int:
        crc = x[n] & MASK32
        for byte in (x[m] & data).to_bytes(size, "little"):
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        x[d] = crc
        return npc

    return op


@TABLE.add("x001 1010 110x xxxx xxxx xxxx xxxx xxxx", "data-processing (2 source)")
@emitter
def emit_two_source(insn: int, pc: int) -> Emitted | None:
    """C6.2 UDIV, SDIV, LSLV, LSRV, ASRV, RORV (the CRC32 forms are decoded before)."""
    width, mask, n, d = sf_fields(insn)
    code = _TWO_SOURCE.get(bits(insn, 15, 10))
    if code is None:
        return None
    return emitted(pc, code, d=write_index(d), n=n, m=_rm(insn), mask=mask, modulo=width - 1,
                   sign=1 << (width - 1))


# -- C4.1.95.13 Data-processing (3 source) -------------------------------------------------------

def _three_source_consts(insn: int) -> dict[str, int]:
    """Rd (as written), Rn, Rm, Ra of a 3-source encoding."""
    return {"d": write_index(insn & 31), "n": bits(insn, 9, 5), "m": _rm(insn), "a": bits(insn, 14, 10)}


# By o0 (add, subtract), then Ra = XZR (MUL, MNEG, ...).
_MADD = (("x[{d}] = (x[{a}] + x[{n}] * x[{m}]) & {mask}", "x[{d}] = x[{n}] * x[{m}] & {mask}"),
         ("x[{d}] = (x[{a}] - x[{n}] * x[{m}]) & {mask}", "x[{d}] = -(x[{n}] * x[{m}]) & {mask}"))


@TABLE.add("x001 1011 000x xxxx xxxx xxxx xxxx xxxx", "MADD/MSUB")
@emitter
def emit_madd(insn: int, pc: int) -> Emitted:
    """C6.2 MADD, MSUB (and MUL, MNEG): Rd = Ra +/- Rn * Rm."""
    consts = _three_source_consts(insn)
    code = _MADD[(insn >> 15) & 1][consts["a"] == 31]
    return emitted(pc, code, mask=MASK64 if insn >> 31 else MASK32, **consts)


# By U (signed, unsigned), then o0: Xd = Xa +/- Wn * Wm.
_MADDL = tuple(
    tuple("x[{d}] = (x[{a}] " + sign + " " + product + ") & " + str(MASK64) for sign in "+-")
    for product in (("((x[{n}] & 4294967295 ^ 2147483648) - 2147483648) * "
                     "((x[{m}] & 4294967295 ^ 2147483648) - 2147483648)"),
                    "(x[{n}] & 4294967295) * (x[{m}] & 4294967295)")
)


@TABLE.add("1001 1011 x01x xxxx xxxx xxxx xxxx xxxx", "SMADDL/SMSUBL/UMADDL/UMSUBL")
@emitter
def emit_maddl(insn: int, pc: int) -> Emitted:
    """C6.2 SMADDL, SMSUBL, UMADDL, UMSUBL (and SMULL, SMNEGL,
    UMULL, UMNEGL): Xd = Xa +/- Wn * Wm, signed or unsigned."""
    return emitted(pc, _MADDL[(insn >> 23) & 1][(insn >> 15) & 1], **_three_source_consts(insn))


_MULH = ("x[{d}] = ((x[{n}] ^ 9223372036854775808) - 9223372036854775808)"
         " * ((x[{m}] ^ 9223372036854775808) - 9223372036854775808) >> 64 & " + str(MASK64),
         "x[{d}] = x[{n}] * x[{m}] >> 64")


@TABLE.add("1001 1011 x10x xxxx 0xxx xxxx xxxx xxxx", "SMULH/UMULH")
@emitter
def emit_mulh(insn: int, pc: int) -> Emitted:
    """C6.2 SMULH, UMULH: Xd = (Xn * Xm)<127:64>, signed or unsigned (Ra, UNPREDICTABLE unless
    XZR, is ignored)."""
    consts = _three_source_consts(insn)
    del consts["a"]
    return emitted(pc, _MULH[(insn >> 23) & 1], **consts)
