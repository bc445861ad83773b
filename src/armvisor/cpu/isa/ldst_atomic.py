"""Large System Extensions atomics (FEAT_LSE, Arm ARM C4.1.88): LDADD, LDCLR, LDEOR, LDSET,
LDSMAX, LDSMIN, LDUMAX, LDUMIN, SWP (B/H/W/X, with the A/L/AL variants and the ST* aliases
that load into XZR), CAS (B/H/W/X) and CASP (W/X pairs).

The load happens first (a fault there is reported as a read), then the store, then the
register writes, so a fault changes nothing. There is no ISV=1 syndrome for atomics. The
ordering variants (A, L) behave alike on a single PE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from armvisor.cpu.decoder import DecodeTable, Op, bits
from armvisor.cpu.isa.alu import write_index
from armvisor.cpu.isa.ldst_common import Index, Xfer, addressed, reader, writer
from armvisor.cpu.state import ZR_READ, CpuState

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu

TABLE = DecodeTable("ldst_atomic")

# new memory value from (old value, Rs value, sign bit); both operands are unsigned size-bit
# values and the writer keeps the low size bits of the result.
AtomicOp = Callable[[int, int, int], int]


def _signed(v: int, sign_bit: int) -> int:
    return (v ^ sign_bit) - sign_bit


# o3:opc -> MemAtomicOp (Arm ARM C6.2 LDADD ... SWP); 0b1000 is SWP.
_ATOMIC_OPS: dict[int, AtomicOp] = {
    0b0000: lambda old, v, sb: old + v,  # LDADD
    0b0001: lambda old, v, sb: old & ~v,  # LDCLR
    0b0010: lambda old, v, sb: old ^ v,  # LDEOR
    0b0011: lambda old, v, sb: old | v,  # LDSET
    0b0100: lambda old, v, sb: old if _signed(old, sb) >= _signed(v, sb) else v,  # LDSMAX
    0b0101: lambda old, v, sb: old if _signed(old, sb) <= _signed(v, sb) else v,  # LDSMIN
    0b0110: lambda old, v, sb: max(old, v),  # LDUMAX
    0b0111: lambda old, v, sb: min(old, v),  # LDUMIN
    0b1000: lambda old, v, sb: v,  # SWP
}


def atomic(cpu: "Cpu", operation: AtomicOp, rs: int, t: int, nbytes: int) -> Xfer:
    """MemAtomic: Rt = [a]; [a] = operation([a], Rs)."""
    X, rd, wr = cpu.state.x, cpu.access.read[nbytes], cpu.access.write[nbytes]
    t = write_index(t)
    vmask, sign_bit = (1 << 8 * nbytes) - 1, 1 << (8 * nbytes - 1)

    def ld_op(s: CpuState, a: int) -> None:
        old = rd(a)
        wr(a, operation(old, X[rs] & vmask, sign_bit))
        X[t] = old

    return ld_op


@TABLE.add("ss 111 0 00 A R 1 sssss 0 ooo 00 nnnnn ttttt", "lse_atomic")
@TABLE.add("ss 111 0 00 A R 1 sssss 1 000 00 nnnnn ttttt", "swp")
def lse_atomic(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 LD<op>{A}{L}{B,H} and SWP{A}{L}{B,H} (ST<op> when Rt is XZR), [Xn|SP]."""
    operation = _ATOMIC_OPS[bits(insn, 15, 12)]
    xfer = atomic(cpu, operation, bits(insn, 20, 16), bits(insn, 4, 0), 1 << bits(insn, 31, 30))
    return addressed(cpu, pc, bits(insn, 9, 5), 0, Index.OFFSET, xfer)


def compare_and_swap(cpu: "Cpu", rs: int, t: int, esize: int, pair: bool) -> Xfer:
    """MemAtomicCompareAndSwap on one register or an even/odd pair (the second of each pair is
    XZR for the single form): if [a] == Rs:Rs+1 then [a] = Rt:Rt+1; Rs:Rs+1 = old [a]."""
    X, access = cpu.state.x, cpu.access
    total = 2 * esize if pair else esize
    read, write = reader(access, total), writer(access, total)
    emask, ebits = (1 << 8 * esize) - 1, 8 * esize
    rs2, t2 = (rs + 1, t + 1) if pair else (ZR_READ, ZR_READ)
    ws, ws2 = write_index(rs), write_index(rs2)

    def cas(s: CpuState, a: int) -> None:
        old = read(a)
        if old == (X[rs] & emask) | (X[rs2] & emask) << ebits:
            write(a, (X[t] & emask) | (X[t2] & emask) << ebits)
        X[ws] = old & emask
        X[ws2] = old >> ebits

    return cas


@TABLE.add("ss 001000 1 L 1 sssss o 11111 nnnnn ttttt", "cas")
def cas(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 CAS{A}{L}{B,H}: compare Rs with [Xn|SP], store Rt if equal, Rs = old value."""
    nbytes = 1 << bits(insn, 31, 30)
    xfer = compare_and_swap(cpu, bits(insn, 20, 16), bits(insn, 4, 0), nbytes, pair=False)
    return addressed(cpu, pc, bits(insn, 9, 5), 0, Index.OFFSET, xfer)


@TABLE.add("0z 001000 0 L 1 sssss o 11111 nnnnn ttttt", "casp")
def casp(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 CASP{A}{L}: pairs of W (z=0) or X (z=1) registers; an odd Rs or Rt is UNDEFINED."""
    rs, t = bits(insn, 20, 16), bits(insn, 4, 0)
    if (rs | t) & 1:
        return cpu.undefined_op(insn, pc)
    esize = 8 if insn & (1 << 30) else 4
    xfer = compare_and_swap(cpu, rs, t, esize, pair=True)
    return addressed(cpu, pc, bits(insn, 9, 5), 0, Index.OFFSET, xfer)
