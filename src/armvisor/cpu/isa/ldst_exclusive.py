"""Load/store exclusive and load-acquire/store-release (Arm ARM C4.1.88): LDXR/LDAXR/STXR/
STLXR (B/H/W/X), LDXP/LDAXP/STXP/STLXP (W/X pairs), LDAR/STLR (B/H/W/X).

The local exclusive monitor is ``CpuState.exclusive``: (physical address, size in bytes) while
in the Exclusive Access state (Arm ARM "Synchronization and semaphores"). A load-exclusive sets it; a store-exclusive
passes only if it holds exactly the address and size of the store, writes memory only then,
and always clears it (AArch64.ExclusiveMonitorsPass). With the MMU off the PA is the VA.
The memory ordering semantics of acquire/release are those of a single PE: none to model.

Fields the Arm ARM marks should-be-one (Rs of loads, Rt2 of single-register forms and of
LDAR/STLR) are CONSTRAINED UNPREDICTABLE when not all ones; we take the option of behaving as
if they were, as QEMU does for LDXR. LDLAR/STLLR (o0=0, FEAT_LOR) are UNDEFINED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from armvisor.cpu.decoder import DecodeTable, Op, bits
from armvisor.cpu.isa.alu import write_index
from armvisor.cpu.isa.ldst_common import (
    Index,
    Xfer,
    addressed,
    load,
    reader,
    store,
    with_syndrome,
    writer,
)
from armvisor.cpu.state import ZR_READ, CpuState

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu

TABLE = DecodeTable("ldst_exclusive")


def load_exclusive(cpu: "Cpu", t: int, t2: int, esize: int, total: int) -> Xfer:
    """Load ``total`` bytes single-copy atomically, aligned to ``total``, into Rt (low element)
    and Rt2 (high element; XZR for the single-register forms), and mark the address exclusive.
    LDXP with Rt == Rt2 (Unpredictable_LDPOVERLAP): Constraint_UNKNOWN, Rt2's value wins."""
    X, translate, read = cpu.state.x, cpu.access.translate_data, reader(cpu.access, total)
    t, t2 = write_index(t), write_index(t2)
    emask, ebits = (1 << 8 * esize) - 1, 8 * esize

    def ldxr(s: CpuState, a: int) -> None:
        pa = translate(a, total, False)
        v = read(a)
        s.exclusive = (pa, total)
        X[t] = v & emask
        X[t2] = v >> ebits

    return ldxr


def store_exclusive(cpu: "Cpu", rs: int, t: int, t2: int, esize: int, total: int) -> Xfer:
    """Store Rt (and Rt2 above it) if the monitor passes; Ws = 0 on success, 1 on failure.

    The alignment check comes before the monitor check, a failing store makes no access
    (Arm ARM: it is IMPLEMENTATION DEFINED whether aborts are detected first). Rs equal to Rt,
    Rt2 or Rn is CONSTRAINED UNPREDICTABLE: Constraint_NONE (the original values are used)."""
    X, translate, write = cpu.state.x, cpu.access.translate_data, writer(cpu.access, total)
    rs = write_index(rs)
    emask, ebits = (1 << 8 * esize) - 1, 8 * esize

    def stxr(s: CpuState, a: int) -> None:
        pa = translate(a, total, True)
        status = 1
        if s.exclusive == (pa, total):
            write(a, (X[t] & emask) | X[t2] << ebits)
            status = 0
        s.exclusive = None
        X[rs] = status

    return stxr


def _exclusive_op(cpu: "Cpu", insn: int, pc: int, t2: int, esize: int, total: int) -> Op:
    """Shared decode of the exclusives: [Xn|SP], no offset. A load-exclusive op says so
    (``is_load_exclusive``) for the EX bit of a software step syndrome."""
    t, n = bits(insn, 4, 0), bits(insn, 9, 5)
    if not insn & (1 << 22):
        xfer = store_exclusive(cpu, bits(insn, 20, 16), t, t2, esize, total)
        return addressed(cpu, pc, n, 0, Index.OFFSET, xfer)
    op = addressed(cpu, pc, n, 0, Index.OFFSET, load_exclusive(cpu, t, t2, esize, total))
    op.is_load_exclusive = True  # type: ignore[attr-defined]
    return op


@TABLE.add("ss 001000 0 L 0 sssss o uuuuu nnnnn ttttt", "ldst_exclusive")
def ldst_exclusive(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 LDXR/LDAXR/STXR/STLXR and their B/H forms."""
    nbytes = 1 << bits(insn, 31, 30)
    return _exclusive_op(cpu, insn, pc, ZR_READ, nbytes, nbytes)


@TABLE.add("1z 001000 0 L 1 sssss o uuuuu nnnnn ttttt", "ldst_exclusive_pair")
def ldst_exclusive_pair(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 LDXP/LDAXP/STXP/STLXP: two W (z=0) or X (z=1) registers, aligned to the pair."""
    esize = 8 if insn & (1 << 30) else 4
    return _exclusive_op(cpu, insn, pc, bits(insn, 14, 10), esize, 2 * esize)


@TABLE.add("ss 001000 1 L 0 xxxxx 1 xxxxx nnnnn ttttt", "ldar_stlr")
def ldar_stlr(cpu: "Cpu", insn: int, pc: int) -> Op:
    """C6.2 LDAR/STLR and their B/H forms: a single-register access with ISV=1 and AR=1."""
    size, t = bits(insn, 31, 30), bits(insn, 4, 0)
    X, nbytes = cpu.state.x, 1 << size
    if insn & (1 << 22):
        xfer = load(X, t, cpu.access.read[nbytes])
    else:
        xfer = store(X, t, cpu.access.write[nbytes])
    op = addressed(cpu, pc, bits(insn, 9, 5), 0, Index.OFFSET, xfer)
    return with_syndrome(op, size, False, t, size == 3, acq_rel=True)
