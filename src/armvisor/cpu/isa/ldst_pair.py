"""Load/store pair of general-purpose registers (Arm ARM C4.1.88): LDP/STP (W and X), LDPSW,
LDNP/STNP, with signed offset, pre-index and post-index. No ISV=1 syndrome (two registers).

Each element is its own access, aligned to the element size (Device memory, MMU off).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from armvisor.cpu.access import MemoryAccess, Reader
from armvisor.cpu.decoder import DecodeTable, Op, bits, sign_extend
from armvisor.cpu.isa.alu import write_index
from armvisor.cpu.isa.ldst_common import Index, Regs, Xfer, addressed
from armvisor.cpu.memory import PAGE_SIZE
from armvisor.cpu.state import MASK64, CpuState

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu

TABLE = DecodeTable("ldst_pair")

# bits<24:23> -> addressing; 00 is the no-allocate pair (LDNP/STNP), a signed offset too.
_PAIR_INDEX = {0b00: Index.OFFSET, 0b01: Index.POST, 0b10: Index.OFFSET, 0b11: Index.PRE}


def load_pair(X: Regs, t: int, t2: int, rd: Reader, nbytes: int, sign_bit: int) -> Xfer:
    """Load Rt from [a] and Rt2 from [a + size]; both loads happen before either register is
    written. Rt == Rt2 is CONSTRAINED UNPREDICTABLE (Unpredictable_LDPOVERLAP): we take
    Constraint_UNKNOWN, the register ending with the second element, as current QEMU does."""
    t, t2 = write_index(t), write_index(t2)
    if not sign_bit:
        def ldp(s: CpuState, a: int) -> None:
            v1, v2 = rd(a), rd((a + nbytes) & MASK64)
            X[t] = v1
            X[t2] = v2

        return ldp

    def ldpsw(s: CpuState, a: int) -> None:
        v1, v2 = rd(a), rd((a + nbytes) & MASK64)
        X[t] = ((v1 ^ sign_bit) - sign_bit) & MASK64
        X[t2] = ((v2 ^ sign_bit) - sign_bit) & MASK64

    return ldpsw


def store_pair(X: Regs, t: int, t2: int, access: MemoryAccess, nbytes: int) -> Xfer:
    """Store Rt at [a] and Rt2 at [a + size], precisely: when the second element is on the
    next page both accesses are checked first (on the same page, a first access that does not
    fault implies a second that does not)."""
    wr, check = access.write[nbytes], access.check_access
    page_end = PAGE_SIZE - nbytes

    def stp(s: CpuState, a: int) -> None:
        a2 = (a + nbytes) & MASK64
        if a & (PAGE_SIZE - 1) >= page_end:
            check(a, nbytes, True)
            check(a2, nbytes, True)
        wr(a, X[t])
        wr(a2, X[t2])

    return stp


@TABLE.add("oo 101 0 0 mm L iiiiiii uuuuu nnnnn ttttt", "ldst_pair")
def ldst_pair(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 LDP/STP/LDPSW/LDNP/STNP: opc 00 W, 01 LDPSW (loads, not LDNP), 10 X.

    STP/LDP with writeback and Rn equal to Rt or Rt2 follow :func:`addressed` (stores keep the
    original value, loads end with the written-back base)."""
    opc, mode, is_load = bits(insn, 31, 30), bits(insn, 24, 23), bool(insn & (1 << 22))
    signed = opc == 0b01
    if opc == 0b11 or (signed and (not is_load or mode == 0b00)):  # STGP (MTE) or unallocated
        return cpu.undefined_op(insn, pc)
    nbytes = 8 if opc == 0b10 else 4
    t, t2, n = bits(insn, 4, 0), bits(insn, 14, 10), bits(insn, 9, 5)
    X = cpu.state.x
    if is_load:
        xfer = load_pair(X, t, t2, cpu.access.read[nbytes], nbytes, 1 << 31 if signed else 0)
    else:
        xfer = store_pair(X, t, t2, cpu.access, nbytes)
    offset = sign_extend(bits(insn, 21, 15), 7) * nbytes
    return addressed(cpu, pc, n, offset, _PAIR_INDEX[mode], xfer)
