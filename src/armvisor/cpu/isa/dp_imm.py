"""Data processing -- immediate (Arm ARM C4.1.86).

PC-relative addressing, add/subtract (immediate), logical (immediate), move wide, bitfield and
extract. Add/subtract (immediate, with tags) and min/max (immediate) are not implemented
(FEAT_MTE, FEAT_CSSC) and, like every other unallocated encoding here, UNDEFINED.
"""

from __future__ import annotations

from armvisor.cpu.decoder import DecodeTable, bits, sign_extend
from armvisor.cpu.emit import Emitted, emitted, emitter
from armvisor.cpu.isa.alu import (
    NZ_FLAGS,
    add_sub_flags_code,
    decode_bit_masks,
    sf_fields,
    write_index,
)
from armvisor.cpu.state import MASK64

TABLE = DecodeTable("dp_imm")

# X[d] = a decode-time constant (ADR, ADRP, MOVN, MOVZ).
SET_CONST = "x[{d}] = {imm}"


# -- C4.1.86.1 PC-rel. addressing --------------------------------------------------------------

@TABLE.add("0xx1 0000 xxxx xxxx xxxx xxxx xxxx xxxx", "ADR")
@emitter(pc_relative=True)
def emit_adr(insn: int, pc: int) -> Emitted:
    """C6.2 ADR: Rd = PC + imm."""
    imm = sign_extend((bits(insn, 23, 5) << 2) | bits(insn, 30, 29), 21)
    return emitted(pc, SET_CONST, d=write_index(insn & 31), imm=(pc + imm) & MASK64)


@TABLE.add("1xx1 0000 xxxx xxxx xxxx xxxx xxxx xxxx", "ADRP")
@emitter(pc_relative=True)
def emit_adrp(insn: int, pc: int) -> Emitted:
    """C6.2 ADRP: Rd = the 4KB page of PC + imm * 4096."""
    imm = sign_extend((bits(insn, 23, 5) << 2) | bits(insn, 30, 29), 21)
    return emitted(pc, SET_CONST, d=write_index(insn & 31), imm=((pc & ~0xFFF) + (imm << 12)) & MASK64)


# -- C4.1.86.3 Add/subtract (immediate) ----------------------------------------------------------

# Register field 31 names SP (as Rn, and as Rd when flags are not set): the register's text.
_RN = ("x[{n}]", "s.sp")
_RD = ("x[{d}]", "s.sp")


@TABLE.add("xxx1 0001 0xxx xxxx xxxx xxxx xxxx xxxx", "ADD/ADDS/SUB/SUBS (immediate)")
@emitter
def emit_add_sub_imm(insn: int, pc: int) -> Emitted:
    """C6.2 ADD, ADDS, SUB, SUBS (immediate) (and MOV to/from SP, CMP, CMN): imm12, LSL #0 or
    #12; SP may be Rn, and Rd when flags are not set (then Rd = 31 of ADDS/SUBS is XZR)."""
    width, mask, n, d = sf_fields(insn)
    sub = (insn >> 30) & 1
    imm = bits(insn, 21, 10) << (12 * ((insn >> 22) & 1))
    rn = _RN[n == 31]
    if not (insn >> 29) & 1:
        code = _RD[d == 31] + " = (" + rn + " + {imm}) & {mask}"
        return emitted(pc, code, d=d, n=n, imm=(-imm if sub else imm) & mask, mask=mask)
    code = add_sub_flags_code(rn + " & {mask}", "{imm}", bool(sub), "" if d == 31 else "x[{d}]")
    return emitted(pc, code, d=d, n=n, imm=imm, mask=mask, top=width - 1)


# -- C4.1.86.5 Logical (immediate) ---------------------------------------------------------------

# opc -> (a, b) such that Rn <op> imm == (Rn AND a) EOR b, for AND, ORR, EOR.
_LOGICAL_IMM_FORM = (
    lambda imm, mask: (imm, 0),
    lambda imm, mask: (mask ^ imm, imm),
    lambda imm, mask: (mask, imm),
)


@TABLE.add("xxx1 0010 0xxx xxxx xxxx xxxx xxxx xxxx", "AND/ORR/EOR/ANDS (immediate)")
@emitter
def emit_logical_imm(insn: int, pc: int) -> Emitted | None:
    """C6.2 AND, ORR, EOR, ANDS (immediate) (and MOV (bitmask immediate), TST (immediate)): a
    bitmask immediate; Rd may be SP except for ANDS."""
    width, mask, n, d = sf_fields(insn)
    opc = bits(insn, 30, 29)
    big_n = (insn >> 22) & 1
    if big_n and width == 32:
        return None
    masks = decode_bit_masks(big_n, bits(insn, 15, 10), bits(insn, 21, 16), True, width)
    if masks is None:
        return None
    imm = masks[0]
    if opc == 3:
        code = "r_ = x[{n}] & {imm}\n" + ("" if d == 31 else "x[{d}] = r_\n") + NZ_FLAGS
        return emitted(pc, code, d=d, n=n, imm=imm, top=width - 1)
    a, b = _LOGICAL_IMM_FORM[opc](imm, mask)
    return emitted(pc, _RD[d == 31] + " = x[{n}] & {a} ^ {b}", d=d, n=n, a=a, b=b)


# -- C4.1.86.6 Move wide (immediate) -------------------------------------------------------------

def _move_wide_fields(insn: int) -> tuple[int, int, int, int] | None:
    """(mask, imm16, shift, Rd) of MOVN/MOVZ/MOVK, or None where hw is reserved."""
    width, mask, _, d = sf_fields(insn)
    shift = 16 * bits(insn, 22, 21)
    if shift >= width:
        return None
    return mask, bits(insn, 20, 5), shift, d


@TABLE.add("x001 0010 1xxx xxxx xxxx xxxx xxxx xxxx", "MOVN")
@emitter
def emit_movn(insn: int, pc: int) -> Emitted | None:
    """C6.2 MOVN: Rd = NOT(imm16 << shift)."""
    fields = _move_wide_fields(insn)
    if fields is None:
        return None
    mask, imm16, shift, d = fields
    return emitted(pc, SET_CONST, d=write_index(d), imm=mask ^ (imm16 << shift))


@TABLE.add("x101 0010 1xxx xxxx xxxx xxxx xxxx xxxx", "MOVZ")
@emitter
def emit_movz(insn: int, pc: int) -> Emitted | None:
    """C6.2 MOVZ: Rd = imm16 << shift."""
    fields = _move_wide_fields(insn)
    if fields is None:
        return None
    _, imm16, shift, d = fields
    return emitted(pc, SET_CONST, d=write_index(d), imm=imm16 << shift)


@TABLE.add("x111 0010 1xxx xxxx xxxx xxxx xxxx xxxx", "MOVK")
@emitter
def emit_movk(insn: int, pc: int) -> Emitted | None:
    """C6.2 MOVK: replace one halfword of Rd, keeping the others (a W result is
    zero-extended). Rd is read as X[dr] (31: zero) and written as X[d]."""
    fields = _move_wide_fields(insn)
    if fields is None:
        return None
    mask, imm16, shift, d = fields
    return emitted(pc, "x[{d}] = x[{dr}] & {keep} | {imm}", d=write_index(d), dr=d,
                   keep=mask & ~(0xFFFF << shift), imm=imm16 << shift)


# -- C4.1.86.7 Bitfield --------------------------------------------------------------------------

# By opc (SBFM, BFM, UBFM), then for the field moved to bit 0 (right shift, left = 0) or moved
# up from bit 0 (left shift, right = 0). SBFM sign-extends the field; BFM keeps the other bits
# of Rd (read as X[dr], written as X[d]).
_BITFIELD = (
    ("x[{d}] = ((x[{n}] >> {right} & {field} ^ {sign}) - {sign}) & {mask}",
     "x[{d}] = ((x[{n}] & {field} ^ {sign}) - {sign} << {left}) & {mask}"),
    ("x[{d}] = x[{dr}] & {keep} | x[{n}] >> {right} & {field}",
     "x[{d}] = x[{dr}] & {keep} | (x[{n}] & {field}) << {left}"),
    ("x[{d}] = x[{n}] >> {right} & {field}",
     "x[{d}] = (x[{n}] & {field}) << {left}"),
)


@TABLE.add("xxx1 0011 0xxx xxxx xxxx xxxx xxxx xxxx", "SBFM/BFM/UBFM")
@emitter
def emit_bitfield(insn: int, pc: int) -> Emitted | None:
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
        return None
    if imms >= immr:
        right, length, left = immr, imms - immr + 1, 0
    else:
        right, length, left = 0, imms + 1, width - immr
    field = (1 << length) - 1
    code = _BITFIELD[opc][left != 0]
    shift = {"left": left} if left else {"right": right}
    if opc == 0:
        return emitted(pc, code, d=write_index(d), n=n, field=field, sign=(field + 1) >> 1, mask=mask,
                       **shift)
    if opc == 1:
        return emitted(pc, code, d=write_index(d), dr=d, n=n, field=field,
                       keep=mask & ~(field << left), **shift)
    return emitted(pc, code, d=write_index(d), n=n, field=field, **shift)


# -- C4.1.86.8 Extract ---------------------------------------------------------------------------

@TABLE.add("x001 0011 1x0x xxxx xxxx xxxx xxxx xxxx", "EXTR")
@emitter
def emit_extr(insn: int, pc: int) -> Emitted | None:
    """C6.2 EXTR (and its alias ROR (immediate)): Rd = (Rn:Rm)<lsb+datasize-1:lsb>."""
    width, mask, n, d = sf_fields(insn)
    lsb = bits(insn, 15, 10)
    if (insn >> 22) & 1 != width >> 6 or lsb >= width:
        return None
    return emitted(pc, "x[{d}] = ((x[{n}] & {mask}) << {width} | x[{m}] & {mask}) >> {lsb} & {mask}",
                   d=write_index(d), n=n, m=bits(insn, 20, 16), width=width, lsb=lsb, mask=mask)
