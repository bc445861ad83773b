"""Hypothesis strategies for differential tests of A64 instructions: instruction words built
from encoding fields, and machine states (X0-X30, SP, NZCV) for ``check_stream``.

Encoding fields and register values come from a ``random.Random`` that hypothesis seeds:
hypothesis's own integer strategies favour small values so strongly that, say, the upper half of
a 19-bit immediate or a negative divisor would hardly ever be drawn, and its choices among a
few values are far from independent.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from hypothesis import strategies as st

EDGES = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
         1 << 32, (1 << 63) - 1, 1 << 63, (1 << 64) - 2, (1 << 64) - 1]

rngs = st.randoms(use_true_random=True)


def register_value(rng: random.Random) -> int:
    """An edge value, a random 64- or 32-bit value, or a small positive or negative one."""
    kind = rng.randrange(5)
    if kind == 0:
        return rng.choice(EDGES)
    if kind == 3:
        return rng.randrange(1 << 32)
    if kind == 4:
        return rng.randrange(-300, 300) & ((1 << (32 << rng.randrange(2))) - 1)
    return rng.randrange(1 << 64)


def machine_state(rng: random.Random, nzcv: int) -> dict:
    """check_stream() keyword arguments: random X0-X30 and SP, and NZCV."""
    return {"x": [register_value(rng) for _ in range(31)], "sp": register_value(rng), "nzcv": nzcv}


machine = st.builds(machine_state, rngs, st.integers(0, 15))


Field = Callable[[random.Random], int]


def const(value: int) -> Field:
    return lambda rng: value


def choice(values: Sequence[int]) -> Field:
    """One of ``values``, uniformly (repeat a value to favour it)."""
    values = list(values)
    return lambda rng: rng.choice(values)


def uniform(width: int) -> Field:
    """A ``width``-bit field: uniformly random, or (one time in eight) all zeros, all ones or
    just the top bit."""
    edges = [0, (1 << width) - 1, 1 << (width - 1)]
    return lambda rng: rng.choice(edges) if rng.randrange(8) == 0 else rng.getrandbits(width)


reg = choice([*range(32), *[31] * 6])  # register field, 31 (SP or ZR) favoured
bit = choice((0, 1))
sf = bit
rarely = choice((0, 0, 0, 0, 0, 0, 1))  # a field that is 0 in allocated encodings
imm6 = choice([*range(64), 0, 1, 31, 32, 63])


def fields(*layout: tuple[int, Field]) -> st.SearchStrategy[int]:
    """An instruction word from (lsb, field) pairs, the fields drawn independently.

    The fields come from one seeded generator per word: hypothesis's own choices among a few
    values are far from uniform (a combination of three fields may never be drawn)."""
    return rngs.map(lambda rng: sum(field(rng) << lsb for lsb, field in layout))


def force(words: st.SearchStrategy[int], lsb: int, width: int, value: int) -> st.SearchStrategy[int]:
    """``words`` with the field at insn<lsb+width-1:lsb> set to ``value`` (to make an alias)."""
    clear = ~(((1 << width) - 1) << lsb)
    return words.map(lambda w: (w & clear) | (value << lsb))


# Values of Rm next to Rn where carry, overflow and zero flip: x, NOT x, x +/- 1, -x, ...
_NEIGHBOURS: tuple[Callable[[int], int], ...] = (
    lambda v: v, lambda v: ~v, lambda v: v + 1, lambda v: v - 1, lambda v: -v, lambda v: ~v + 1,
    lambda v: ~v - 1, lambda v: v ^ 1 << 63, lambda v: v ^ 1 << 31, lambda v: ~v & 0xFFFF_FFFF,
    lambda v: (v + 1) & 0xFFFF_FFFF, lambda v: (v - 1) & 0xFFFF_FFFF,
)


def neighbour(rng: random.Random, value: int) -> int:
    """A 64-bit value related to ``value`` where the flags of a sum or difference change."""
    return rng.choice(_NEIGHBOURS)(value) & ((1 << 64) - 1)


def with_related_operands(words: st.SearchStrategy[int]) -> st.SearchStrategy[tuple[int, dict]]:
    """(word, machine state) with Rm (insn<20:16>) a neighbour of Rn (insn<9:5>)."""

    def relate(word: int, rng: random.Random, nzcv: int) -> tuple[int, dict]:
        m = machine_state(rng, nzcv)
        n, rm = (word >> 5) & 31, (word >> 16) & 31
        if n != 31 and rm != 31:
            m["x"][rm] = neighbour(rng, m["x"][n])
        return word, m

    return st.builds(relate, words, rngs, st.integers(0, 15))


def encode(*layout: tuple[int, int]) -> int:
    """An instruction word from (lsb, value) fields."""
    return sum(value << lsb for lsb, value in layout)
