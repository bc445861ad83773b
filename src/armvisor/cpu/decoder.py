"""Declarative A64 decoding (Arm ARM C4.1): encodings written as bit patterns, decoded once.

A pattern is 32 characters, most significant bit first: ``0``/``1`` must match, anything else
(``x``, a field letter) is free; spaces and underscores are ignored. A :class:`DecodeTable` tries
its patterns in order and calls the builder of the first match.

A builder turns one instruction word at one address into an :data:`Op`: a callable taking the
:class:`~armvisor.cpu.state.CpuState` and returning the address of the next instruction. The
PC is a decode-time constant (decoded instructions are cached by address), so PC-relative
values and fall-through addresses are precomputed.

Builders receive a :class:`DecodeContext` with what they may bind at decode time: the state,
its register list, the memory accessors and the CPU's helpers for exceptions and system
registers.  An op that must take a data-abort syndrome with ISV=1 carries it as ``op.dabt_iss``.
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


class DecodeTable:
    """An ordered list of (pattern, builder); the first match decodes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.entries: list[tuple[int, int, str, Builder]] = []

    def add(self, bits: str, name: str | None = None) -> Callable[[Builder], Builder]:
        """Decorator registering a builder for ``bits``."""
        mask, value = pattern(bits)

        def register(builder: Builder) -> Builder:
            self.entries.append((mask, value, name or builder.__name__, builder))
            return builder

        return register

    def lookup(self, insn: int) -> tuple[str, Builder] | None:
        for mask, value, name, builder in self.entries:
            if insn & mask == value:
                return name, builder
        return None

    def decode(self, cpu: "Cpu", insn: int, pc: int) -> Op:
        """Decode ``insn``; an encoding no entry claims is UNDEFINED."""
        for mask, value, _name, builder in self.entries:
            if insn & mask == value:
                return builder(cpu, insn, pc)
        return cpu.undefined_op(insn, pc)


def bits(insn: int, hi: int, lo: int) -> int:
    """insn<hi:lo>."""
    return (insn >> lo) & ((1 << (hi - lo + 1)) - 1)


def sign_extend(value: int, width: int) -> int:
    """Sign-extend a ``width``-bit value to a Python int."""
    sign = 1 << (width - 1)
    return (value & (sign - 1)) - (value & sign)
