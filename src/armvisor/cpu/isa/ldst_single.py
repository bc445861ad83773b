"""Loads and stores of one general-purpose register (Arm ARM C4.1.88): LDR/STR and their byte,
halfword and sign-extending forms with an unsigned, unscaled, pre-/post-indexed or register
offset, the unprivileged LDTR/STTR family, LDR (literal), and PRFM/PRFUM (no-ops).

Emitters (:mod:`armvisor.cpu.emit`). The address wraps modulo 2^64; with SP as base the SP
alignment check comes first; the writeback of the pre-/post-indexed forms comes after the
access, so a fault leaves the base untouched. A load with writeback and Rn == Rt is CONSTRAINED
UNPREDICTABLE (Unpredictable_WBOVERLAPLD): like QEMU we take Constraint_UNKNOWN, the base ending
up with the written-back address. A store with writeback and Rn == Rt stores the original Rt
(Constraint_NONE, as QEMU).

The forms without writeback carry the ISV=1 data-abort syndrome: the Arm ARM (ESR_ELx, ISS
encoding for a Data Abort, field ISV) makes it valid for "AArch64 loads and stores of a single
general-purpose register (including the register specified with 0b11111, including those with
Acquire/Release semantics, but excluding Load Exclusive or Store Exclusive and excluding those
with writeback)". LDR (literal) is such a load, and QEMU also reports ISV=1 for it.
"""

from __future__ import annotations

from typing import NamedTuple

from armvisor.arch.esr import dabt_iss_access
from armvisor.cpu.decoder import DecodeTable, bits, sign_extend
from armvisor.cpu.emit import Emitted, emitted, emitter
from armvisor.cpu.isa.alu import write_index
from armvisor.cpu.isa.ldst_common import SP, Index, access_text, immediate_address
from armvisor.cpu.state import MASK32, MASK64

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

# Transfers ('#' stands for the access size in bytes).
_LOAD = "\nv_ = LOAD#(a_)\nx[{t}] = v_"
_LOAD_SIGNED = "\nv_ = LOAD#(a_)\nx[{t}] = ((v_ ^ {sign}) - {sign}) & {mask}"
_STORE = "\nSTORE#(a_, x[{t}])"


def _emit(pc: int, insn: int, single: Single, address: str, index: Index, **consts: int) -> Emitted:
    """The access of ``single`` (size insn<31:30>, Rn insn<9:5>, Rt insn<4:0>) at ``address``
    (a snippet of :mod:`.ldst_common`) in ``index`` mode; the forms without writeback have the
    ISV=1 syndrome."""
    size, n, t = bits(insn, 31, 30), bits(insn, 9, 5), bits(insn, 4, 0)
    nbytes = 1 << size
    if not single.is_load:
        transfer, consts["t"] = _STORE, t  # Rt == 31 reads XZR
    elif single.signed:
        transfer, consts["t"] = _LOAD_SIGNED, write_index(t)
        consts["sign"] = 1 << (8 * nbytes - 1)
        consts["mask"] = MASK64 if single.sf else MASK32
    else:
        transfer, consts["t"] = _LOAD, write_index(t)
    if n != SP:
        consts["n"] = n
    code = access_text(address, transfer.replace("#", str(nbytes)), index, n == SP)
    no_writeback = index is Index.OFFSET
    dabt_iss = dabt_iss_access(size, single.signed, t, single.sf, False) if no_writeback else 0
    return emitted(pc, code, dabt_iss=dabt_iss, **consts)


def _immediate(insn: int, pc: int, imm: int, index: Index) -> Emitted | None:
    """Shared decode of the immediate-offset forms (C6.2 LDR/STR (immediate), LDUR/STUR,
    LDTR/STTR and their B/H/SB/SH/SW variants)."""
    single = _SINGLES.get((bits(insn, 31, 30), bits(insn, 23, 22)))
    if single is None:
        return None
    return _emit(pc, insn, single, immediate_address(index, imm), index, imm=imm)


@TABLE.add("ss 111 0 01 oo iiiiiiiiiiii nnnnn ttttt", "ldst_uimm")
@emitter
def emit_ldst_unsigned_offset(insn: int, pc: int) -> Emitted | None:
    """C6.2 LDR/STR (immediate), unsigned offset: imm12 scaled by the access size."""
    size = bits(insn, 31, 30)
    if (size, bits(insn, 23, 22)) == PRFM:
        return emitted(pc, "")
    return _immediate(insn, pc, bits(insn, 21, 10) << size, Index.OFFSET)


# op4 of the 9-bit immediate forms -> addressing (unprivileged = plain at EL0/EL1, MMU off).
_IMM9_INDEX = {0b00: Index.OFFSET, 0b01: Index.POST, 0b10: Index.OFFSET, 0b11: Index.PRE}


@TABLE.add("ss 111 0 00 oo 0 iiiiiiiii ww nnnnn ttttt", "ldst_imm9")
@emitter
def emit_ldst_imm9(insn: int, pc: int) -> Emitted | None:
    """LDUR/STUR (op4=00), post-index (01), LDTR/STTR (10), pre-index (11): signed imm9."""
    op4 = bits(insn, 11, 10)
    if (bits(insn, 31, 30), bits(insn, 23, 22)) == PRFM:
        return emitted(pc, "") if op4 == 0b00 else None  # PRFUM
    return _immediate(insn, pc, sign_extend(bits(insn, 20, 12), 9), _IMM9_INDEX[op4])


# Register-offset option -> address (Arm ARM C6.2 "ExtendReg" of Rm, shifted); option<1> == 0
# is reserved. SXTX equals LSL modulo 2^64.
_LSL = "a_ = (BASE + (x[{m}] << {shift})) & 0xFFFFFFFFFFFFFFFF"
_EXTENDS = {
    0b010: "a_ = (BASE + ((x[{m}] & 0xFFFFFFFF) << {shift})) & 0xFFFFFFFFFFFFFFFF",  # UXTW
    0b011: _LSL,  # LSL
    0b110: "a_ = (BASE + ((((x[{m}] & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000) << {shift}))"
           " & 0xFFFFFFFFFFFFFFFF",  # SXTW
    0b111: _LSL,  # SXTX
}


@TABLE.add("ss 111 0 00 oo 1 mmmmm ooo S 10 nnnnn ttttt", "ldst_regoff")
@emitter
def emit_ldst_register_offset(insn: int, pc: int) -> Emitted | None:
    """C6.2 LDR/STR (register): [Xn|SP, (W|X)m{, extend {#(S ? size : 0)}}]; option<1> == 0
    is UNDEFINED."""
    size, opc, option = bits(insn, 31, 30), bits(insn, 23, 22), bits(insn, 15, 13)
    extend = _EXTENDS.get(option)
    if (size, opc) == PRFM:
        return emitted(pc, "") if extend else None
    single = _SINGLES.get((size, opc))
    if single is None or extend is None:
        return None
    shift = size if insn & (1 << 12) else 0
    return _emit(pc, insn, single, extend, Index.OFFSET, m=bits(insn, 20, 16), shift=shift)


# opc of LDR (literal) -> (access size log2, signed, X register, text); opc 11 is PRFM (literal).
_LITERALS = {
    0b00: (2, False, False, "v_ = LOAD4({a})\nx[{t}] = v_"),
    0b01: (3, False, True, "v_ = LOAD8({a})\nx[{t}] = v_"),
    0b10: (2, True, True, "v_ = LOAD4({a})\nx[{t}] = ((v_ ^ 0x80000000) - 0x80000000) & 0xFFFFFFFFFFFFFFFF"),
}


@TABLE.add("oo 011 0 00 iiiiiiiiiiiiiiiiiii ttttt", "ldr_literal")
@emitter(pc_relative=True)
def emit_ldr_literal(insn: int, pc: int) -> Emitted:
    """C6.2 LDR (literal), LDRSW (literal), PRFM (literal); the address is a decode-time
    constant."""
    opc, t = bits(insn, 31, 30), bits(insn, 4, 0)
    if opc == 0b11:
        return emitted(pc, "")
    size, signed, sf, code = _LITERALS[opc]
    address = (pc + (sign_extend(bits(insn, 23, 5), 19) << 2)) & MASK64
    return emitted(pc, code, t=write_index(t), a=address,
                   dabt_iss=dabt_iss_access(size, signed, t, sf, False))
