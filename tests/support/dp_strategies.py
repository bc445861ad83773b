"""Hypothesis strategies for differential tests of A64 instructions: instruction words built
from encoding fields, and machine states (X0-X30, SP, NZCV) for ``check_stream``.

Wide fields and register values come from a seeded ``random.Random``: hypothesis's own integer
strategies favour small values so strongly that, say, the upper half of a 19-bit immediate or a
negative divisor would hardly ever be drawn.
"""

from __future__ import annotations

import random

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


def uniform(width: int) -> st.SearchStrategy[int]:
    """A ``width``-bit field: uniformly random, or all zeros, all ones or just the top bit."""
    return st.one_of(rngs.map(lambda rng: rng.getrandbits(width)),
                     st.sampled_from([0, (1 << width) - 1, 1 << (width - 1)]))


def choice(values) -> st.SearchStrategy[int]:
    return st.sampled_from(list(values))


reg = choice([*range(32), *[31] * 6])  # register field, 31 (SP or ZR) favoured
sf = choice((0, 1))
bit = choice((0, 1))
rarely = choice((0, 0, 0, 0, 0, 0, 1))  # a field that is 0 in allocated encodings
imm6 = st.one_of(choice(range(64)), choice((0, 1, 31, 32, 63)))


def fields(*layout: tuple[int, st.SearchStrategy[int]]) -> st.SearchStrategy[int]:
    """An instruction word from (lsb, strategy) pairs; constant parts as st.just(...)."""
    return st.tuples(*(strategy.map(lambda v, lsb=lsb: v << lsb) for lsb, strategy in layout)).map(sum)


def force(words: st.SearchStrategy[int], lsb: int, width: int, value: int) -> st.SearchStrategy[int]:
    """``words`` with the field at insn<lsb+width-1:lsb> set to ``value`` (to make an alias)."""
    clear = ~(((1 << width) - 1) << lsb)
    return words.map(lambda w: (w & clear) | (value << lsb))
