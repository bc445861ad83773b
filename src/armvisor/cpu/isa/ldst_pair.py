"""Load/store pair of general-purpose registers (Arm ARM C4.1.88): LDP/STP (W and X), LDPSW,
LDNP/STNP, with signed offset, pre-index and post-index. No ISV=1 syndrome (two registers).

Emitters (:mod:`armvisor.cpu.emit`). Each element is its own access, aligned to the element
size (Device memory, MMU off); the second address wraps modulo 2^64.
"""

from __future__ import annotations

from armvisor.cpu.decoder import DecodeTable, bits, sign_extend
from armvisor.cpu.emit import Emitted, emitted, emitter
from armvisor.cpu.isa.alu import write_index
from armvisor.cpu.isa.ldst_common import SP, Index, access_text, immediate_address
from armvisor.cpu.memory import PAGE_SIZE

TABLE = DecodeTable("ldst_pair")

# bits<24:23> -> addressing; 00 is the no-allocate pair (LDNP/STNP), a signed offset too.
_PAIR_INDEX = {0b00: Index.OFFSET, 0b01: Index.POST, 0b10: Index.OFFSET, 0b11: Index.PRE}

# Transfers ('#' stands for the element size in bytes).
# LDP: both loads before either register is written.
_LOAD_PAIR = "\nv_ = LOAD#(a_)\nw_ = LOAD#((a_ + #) & 0xFFFFFFFFFFFFFFFF)"
_LDP = _LOAD_PAIR + "\nx[{t}] = v_\nx[{t2}] = w_"
_LDPSW = (_LOAD_PAIR + "\nx[{t}] = ((v_ ^ 0x80000000) - 0x80000000) & 0xFFFFFFFFFFFFFFFF"
          "\nx[{t2}] = ((w_ ^ 0x80000000) - 0x80000000) & 0xFFFFFFFFFFFFFFFF")
# STP, precise: when the second element is on the next page both accesses are checked first
# (on the same page, a first access that does not fault implies a second that does not).
_STP = ("\nb_ = (a_ + #) & 0xFFFFFFFFFFFFFFFF"
        f"\nif a_ & {PAGE_SIZE - 1} >= {PAGE_SIZE} - #:"
        "\n    CHECK_STORE#(a_)\n    CHECK_STORE#(b_)"
        "\nSTORE#(a_, x[{t}])\nSTORE#(b_, x[{t2}])")


@TABLE.add("oo 101 0 0 mm L iiiiiii uuuuu nnnnn ttttt", "ldst_pair")
@emitter
def emit_ldst_pair(insn: int, pc: int) -> Emitted | None:
    """C6.2 LDP/STP/LDPSW/LDNP/STNP: opc 00 W, 01 LDPSW (loads, not LDNP), 10 X; 11 is STGP
    (FEAT_MTE), UNDEFINED like the other unallocated forms.

    LDP with Rt == Rt2 is CONSTRAINED UNPREDICTABLE (Unpredictable_LDPOVERLAP): we take
    Constraint_UNKNOWN, the register ending with the second element, as current QEMU does.
    With writeback and Rn equal to Rt or Rt2, loads end with the written-back base and stores
    store the original value (as :func:`~armvisor.cpu.isa.ldst_common.addressed`)."""
    opc, mode, is_load = bits(insn, 31, 30), bits(insn, 24, 23), bool(insn & (1 << 22))
    signed = opc == 0b01
    if opc == 0b11 or (signed and (not is_load or mode == 0b00)):
        return None
    nbytes = 8 if opc == 0b10 else 4
    t, t2, n = bits(insn, 4, 0), bits(insn, 14, 10), bits(insn, 9, 5)
    if is_load:
        transfer, t, t2 = _LDPSW if signed else _LDP, write_index(t), write_index(t2)
    else:
        transfer = _STP  # Rt, Rt2 == 31 read XZR
    index, imm = _PAIR_INDEX[mode], sign_extend(bits(insn, 21, 15), 7) * nbytes
    code = access_text(immediate_address(index, imm), transfer.replace("#", str(nbytes)), index,
                       n == SP)
    regs = {"n": n} if n != SP else {}
    return emitted(pc, code, t=t, t2=t2, imm=imm, **regs)
