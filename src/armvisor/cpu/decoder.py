"""Declarative A64 decoding (Arm ARM C4.1): encodings written as bit patterns, decoded once.

A pattern is 32 characters, most significant bit first: ``0``/``1`` must match, anything else
(``x``, a field letter) is free; spaces and underscores are ignored. A :class:`DecodeTable` tries
its patterns in order and hands back the builder of the first match.

A builder turns one instruction word at one address into an :data:`Op`: a callable taking the
:class:`~armvisor.cpu.state.CpuState` and returning the address of the next instruction. The
PC is a decode-time constant (decoded instructions are cached by address), so PC-relative
values and fall-through addresses are precomputed.

Builders receive the :class:`~armvisor.cpu.core.Cpu`, the instruction word and its address, and
bind at decode time what they need: the state, its register list, the memory accessors and the
CPU's helpers for exceptions and system registers.  An op that must take a data-abort syndrome
with ISV=1 carries it as ``op.dabt_iss``. Most groups register *emitters* instead
(:func:`armvisor.cpu.emit.emitter`): the instruction as source text, which tier 0 and the
translator share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu

from armvisor.cpu.state import CpuState


class Op(Protocol):
    def __call__(self, s: CpuState) -> int: ...


Builder = Callable[["Cpu", int, int], Op]


def pattern(bits: str) -> tuple[int, int]:
    """(mask, value) of a 32-bit pattern such as ``"1x01 0100 iiii ..."``."""
    bits = bits.replace(" ", "").replace("_", "")
    if len(bits) != 32:
        raise ValueError(f"pattern {bits!r} has {len(bits)} bits, not 32")
    mask = value = 0
    for ch in bits:
        mask <<= 1
        value <<= 1
        if ch in "01":
            mask |= 1
            value |= ch == "1"
    return mask, value


INDEX_BITS = 8  # width of the instruction field a table's index is keyed by


class DecodeTable:
    """An ordered list of (pattern, builder); the first match decodes.

    Lookups go through an index derived from the patterns on first use: the window of
    :data:`INDEX_BITS` contiguous instruction bits that the patterns fix most, and for each
    value of that field the entries, in table order, whose fixed bits there agree with it. The
    first match among those is the first match of the whole list.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.entries: list[tuple[int, int, str, Builder]] = []
        self._shift = 0
        self._buckets: list[tuple[tuple[int, int, str, Builder], ...]] | None = None

    def add(self, bits: str, name: str | None = None) -> Callable[[Builder], Builder]:
        """Decorator registering a builder for ``bits``."""
        mask, value = pattern(bits)

        def register(builder: Builder) -> Builder:
            self.entries.append((mask, value, name or builder.__name__, builder))
            self._buckets = None
            return builder

        return register

    def include(self, *tables: "DecodeTable") -> None:
        """Append the entries of ``tables``, in order, after this table's own."""
        for table in tables:
            self.entries.extend(table.entries)
        self._buckets = None

    def _build_index(self) -> list[tuple[tuple[int, int, str, Builder], ...]]:
        """Index the entries by the window whose values leave the fewest candidates (the sum,
        over the field's values, of the entries compatible with each), counting only the bits
        that tell entries apart (not those every entry fixes to the same value)."""
        field = (1 << INDEX_BITS) - 1
        shared_bits = ~0
        for mask, value, *_ in self.entries:
            shared_bits &= mask & ~(value ^ self.entries[0][1])

        def candidates(shift: int) -> int:
            return sum(1 << (INDEX_BITS - bin((mask & ~shared_bits) >> shift & field).count("1"))
                       for mask, *_ in self.entries)

        self._shift = shift = min(range(33 - INDEX_BITS), key=candidates)
        shared: dict[tuple, tuple] = {}
        self._buckets = [
            shared.setdefault(bucket, bucket)
            for key in range(1 << INDEX_BITS)
            for bucket in [tuple(e for e in self.entries if ((e[1] >> shift) ^ key) & (e[0] >> shift) & field == 0)]
        ]
        return self._buckets

    def lookup(self, insn: int) -> tuple[str, Builder] | None:
        buckets = self._buckets if self._buckets is not None else self._build_index()
        for mask, value, name, builder in buckets[(insn >> self._shift) & ((1 << INDEX_BITS) - 1)]:
            if insn & mask == value:
                return name, builder
        return None


def bits(insn: int, hi: int, lo: int) -> int:
    """insn<hi:lo>."""
    return (insn >> lo) & ((1 << (hi - lo + 1)) - 1)


def sign_extend(value: int, width: int) -> int:
    """Sign-extend a ``width``-bit value to a Python int."""
    sign = 1 << (width - 1)
    return (value & (sign - 1)) - (value & sign)


def goto(target: int) -> Op:
    """An op with no effect but continuing at ``target``: NOPs, hints and prefetches
    (``goto(pc + 4)``), and B (``goto(label)``)."""

    def go(s: CpuState) -> int:
        return target

    return go
