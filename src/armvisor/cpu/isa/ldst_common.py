"""What the load/store modules share: addressing, transfers and the data-abort syndrome.

Single-register loads and stores and pairs are emitters (:mod:`armvisor.cpu.emit`) whose
text is composed by :func:`access_text`. The other ops of the group are split in two closures,
both built at decode time:

* the *addressing* op (:func:`addressed`) reads the base register, checks SP alignment when the
  base is SP, computes the address and does the writeback of the pre-/post-indexed forms --
  after the transfer, so a fault leaves the base untouched;
* the *transfer* ``xfer(s, address)`` does the memory accesses and writes the registers
  (:func:`load`, :func:`store` here; exclusives and atomics in their modules).  Every
  access that can fault happens before the first register write, so ops are precise.

With the MMU off (the only regime :mod:`armvisor.cpu.access` implements) all data accesses are
to Device memory and every unaligned access takes an alignment fault from the accessors, which
also covers the natural-alignment rule of acquire/release, exclusive and atomic instructions.
Data is little-endian: SCTLR_EL1.EE/E0E are not looked at (big-endian data is not implemented).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

from armvisor.arch.esr import dabt_iss_access
from armvisor.cpu.access import MemoryAccess, Reader, Writer
from armvisor.cpu.decoder import Op
from armvisor.cpu.isa.alu import write_index
from armvisor.cpu.sp_alignment import sp_checked
from armvisor.cpu.state import MASK64, CpuState

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu

Xfer = Callable[[CpuState, int], None]
Regs = list[int]

SP = 31  # register field value naming SP when it is a base register


class Index(Enum):
    """Addressing modes with an immediate offset (Arm ARM "Load/Store addressing modes")."""

    OFFSET = "offset"  # [Xn|SP, #imm]
    PRE = "pre"  # [Xn|SP, #imm]!
    POST = "post"  # [Xn|SP], #imm


def with_syndrome(op: Op, size_log2: int, sign_extend: bool, rt: int, sf: bool,
                  acq_rel: bool = False) -> Op:
    """Give ``op`` the ISV=1 instruction syndrome of a single-register access without writeback
    (ESR_ELx ISS for a Data Abort: SAS, SSE, SRT, SF, AR), used for stage-2 aborts."""
    op.dabt_iss = dabt_iss_access(size_log2, sign_extend, rt, sf, acq_rel)  # type: ignore[attr-defined]
    return op


# -- transfers of one general-purpose register --------------------------------------------------

def load(X: Regs, t: int, rd: Reader, sign_bit: int = 0, mask: int = MASK64) -> Xfer:
    """Load into Rt, zero-extended, or sign-extended from ``sign_bit`` and cut to ``mask``."""
    t = write_index(t)
    if not sign_bit:
        def load_zero(s: CpuState, a: int) -> None:
            X[t] = rd(a)

        return load_zero

    def load_signed(s: CpuState, a: int) -> None:
        X[t] = ((rd(a) ^ sign_bit) - sign_bit) & mask

    return load_signed


def store(X: Regs, t: int, wr: Writer) -> Xfer:
    """Store Rt (the writer keeps the low bytes of the access size)."""

    def store_reg(s: CpuState, a: int) -> None:
        wr(a, X[t])

    return store_reg


# -- addressing ---------------------------------------------------------------------------------

def _offset_x(X: Regs, n: int, imm: int, xfer: Xfer, nxt: int) -> Op:
    def offset_x(s: CpuState) -> int:
        xfer(s, (X[n] + imm) & MASK64)
        return nxt

    return offset_x


def _offset_sp(X: Regs, n: int, imm: int, xfer: Xfer, nxt: int) -> Op:
    def offset_sp(s: CpuState) -> int:
        xfer(s, (s.sp + imm) & MASK64)
        return nxt

    return offset_sp


def _pre_x(X: Regs, n: int, imm: int, xfer: Xfer, nxt: int) -> Op:
    def pre_x(s: CpuState) -> int:
        a = (X[n] + imm) & MASK64
        xfer(s, a)
        X[n] = a
        return nxt

    return pre_x


def _pre_sp(X: Regs, n: int, imm: int, xfer: Xfer, nxt: int) -> Op:
    def pre_sp(s: CpuState) -> int:
        a = (s.sp + imm) & MASK64
        xfer(s, a)
        s.sp = a
        return nxt

    return pre_sp


def _post_x(X: Regs, n: int, imm: int, xfer: Xfer, nxt: int) -> Op:
    def post_x(s: CpuState) -> int:
        a = X[n]
        xfer(s, a)
        X[n] = (a + imm) & MASK64
        return nxt

    return post_x


def _post_sp(X: Regs, n: int, imm: int, xfer: Xfer, nxt: int) -> Op:
    def post_sp(s: CpuState) -> int:
        a = s.sp
        xfer(s, a)
        s.sp = (a + imm) & MASK64
        return nxt

    return post_sp


_ADDRESSING = {
    (Index.OFFSET, False): _offset_x, (Index.OFFSET, True): _offset_sp,
    (Index.PRE, False): _pre_x, (Index.PRE, True): _pre_sp,
    (Index.POST, False): _post_x, (Index.POST, True): _post_sp,
}


def addressed(cpu: "Cpu", pc: int, n: int, imm: int, index: Index, xfer: Xfer) -> Op:
    """The op of an access at [Xn|SP] with an immediate offset, in ``index`` mode; with SP as
    base it first checks SP alignment (:func:`~armvisor.cpu.sp_alignment.sp_checked`).

    A load with writeback and Rn == Rt is CONSTRAINED UNPREDICTABLE (Unpredictable_WBOVERLAPLD);
    like QEMU we take Constraint_UNKNOWN, the base ending up with the written-back address.
    A store with writeback and Rn == Rt stores the original Rt (Constraint_NONE, as QEMU).
    """
    op = _ADDRESSING[index, n == SP](cpu.state.x, n, imm, xfer, pc + 4)
    return sp_checked(op, pc) if n == SP else op


# -- emitted text (ldst_single, ldst_pair) --------------------------------------------------------
# An access at [Xn|SP] is [SP_ALIGN_CHECK] / its address into a_ / the transfer / [writeback],
# composed of constant snippets; BASE stands for x[{n}] or s.sp. The address wraps modulo 2^64
# and the writeback comes after the transfer, with the semantics of :func:`addressed`.

_OFFSET_ADDRESS = "a_ = (BASE + {imm}) & 0xFFFFFFFFFFFFFFFF"
_BASE_ADDRESS = "a_ = BASE"
_WRITEBACK = {Index.OFFSET: "", Index.PRE: "\nBASE = a_",
              Index.POST: "\nBASE = (a_ + {imm}) & 0xFFFFFFFFFFFFFFFF"}


def access_text(address: str, transfer: str, index: Index, sp: bool) -> str:
    """The code of an access: ``address`` (a snippet setting ``a_``), ``transfer`` (lines, each
    starting with a newline) and the writeback of ``index``; with SP as base (``sp``) the SP
    alignment check comes first, else the base is ``x[{n}]``."""
    code = address + transfer + _WRITEBACK[index]
    if sp:
        return "SP_ALIGN_CHECK\n" + code.replace("BASE", "s.sp")
    return code.replace("BASE", "x[{n}]")


def immediate_address(index: Index, imm: int) -> str:
    """The address snippet of [Xn|SP, #imm] in ``index`` mode (``{imm}`` the offset)."""
    if index is Index.POST or (index is Index.OFFSET and imm == 0):
        return _BASE_ADDRESS
    return _OFFSET_ADDRESS


# -- single-copy-atomic accesses of up to 16 bytes (exclusive pairs, CASP) -----------------------

def reader(access: MemoryAccess, nbytes: int) -> Reader:
    """The reader of an ``nbytes`` access; 16 bytes are two 8-byte loads after the 16-byte
    alignment check (both halves then lie in one page, so the second cannot fault alone)."""
    if nbytes < 16:
        return access.read[nbytes]
    rd8, translate = access.read[8], access.translate_data

    def read16(a: int) -> int:
        translate(a, 16, False)
        return rd8(a) | rd8(a + 8) << 64

    return read16


def writer(access: MemoryAccess, nbytes: int) -> Writer:
    """The writer of an ``nbytes`` access, 16 bytes as for :func:`reader`."""
    if nbytes < 16:
        return access.write[nbytes]
    wr8, translate = access.write[8], access.translate_data

    def write16(a: int, value: int) -> None:
        translate(a, 16, True)
        wr8(a, value)
        wr8(a + 8, value >> 64)

    return write16
