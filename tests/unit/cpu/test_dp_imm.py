"""Data processing -- immediate (Arm ARM C4.1.86) against Unicorn: random encodings (reserved
ones included, which both machines must treat as UNDEFINED), random and edge register values,
random flags and SP."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.dp_strategies import (
    bit,
    choice,
    const,
    encode,
    fields,
    force,
    imm6,
    machine,
    machine_state,
    neighbour,
    reg,
    rngs,
    sf,
    uniform,
)
from support.oracle import check_stream

pc_rel = fields((31, bit), (29, choice(range(4))), (24, const(0b10000)), (5, uniform(19)), (0, reg))
add_sub_imm = fields((31, sf), (29, choice(range(4))), (23, const(0b100010)), (22, bit), (10, uniform(12)),
                     (5, reg), (0, reg))
# MTE add/sub with tags and CSSC min/max: not implemented, so UNDEFINED on both machines.
add_sub_tags = fields((29, choice(range(8))), (23, const(0b100011)), (0, uniform(23)))
logical_imm = fields((31, sf), (29, choice(range(4))), (23, const(0b100100)), (22, bit), (16, imm6),
                     (10, imm6), (5, reg), (0, reg))
move_wide = fields((31, sf), (29, choice(range(4))), (23, const(0b100101)), (21, choice(range(4))),
                   (5, uniform(16)), (0, reg))
bitfield = fields((31, sf), (29, choice(range(4))), (23, const(0b100110)), (22, bit), (16, imm6),
                  (10, imm6), (5, reg), (0, reg))
extract = fields((31, sf), (29, choice((0, 0, 0, 1, 2, 3))), (23, const(0b100111)), (22, bit),
                 (21, choice((0, 0, 0, 1))), (16, reg), (10, imm6), (5, reg), (0, reg))


def _n_is_sf(word: int) -> int:
    """The word with N (bit 22) equal to sf (bit 31), as allocated bitfield and extract need."""
    return (word & ~(1 << 22)) | (word >> 31) << 22


def _shift_alias(rng: random.Random) -> int:
    """ASR, LSR or LSL (immediate), as the SBFM or UBFM it is an alias of."""
    sf = rng.randrange(2)
    width = 32 << sf
    amount = rng.randrange(width)
    opc, immr, imms = rng.choice([
        (0b00, amount, width - 1),  # ASR
        (0b10, amount, width - 1),  # LSR
        (0b10, -amount % width, width - 1 - amount),  # LSL
    ])
    word = sf << 31 | opc << 29 | 0b100110 << 23 | sf << 22 | immr << 16 | imms << 10
    return word | reg(rng) << 5 | reg(rng)


def _ror_alias(word: int) -> int:
    """An allocated EXTR with Rm = Rn: ROR (immediate)."""
    word = _n_is_sf(word & ~(0b11 << 29 | 1 << 21 | 31 << 16))
    return word | ((word >> 5) & 31) << 16


aliases = st.one_of(
    force(force(force(add_sub_imm, 29, 1, 0), 10, 13, 0), 0, 5, 31),  # MOV Rd, SP (ADD #0)
    force(force(add_sub_imm, 29, 1, 0), 5, 5, 31),  # ADD/SUB Rd, SP, #imm
    force(force(add_sub_imm, 29, 1, 1), 0, 5, 31),  # CMP/CMN (immediate)
    force(force(logical_imm, 29, 2, 0b01), 5, 5, 31),  # MOV (bitmask immediate)
    force(force(logical_imm, 29, 2, 0b11), 0, 5, 31),  # TST (immediate)
    rngs.map(_shift_alias),
    force(force(bitfield.map(_n_is_sf), 29, 2, 0b00), 16, 6, 0),  # SXTB/SXTH/SXTW, SBFX #0
    force(force(bitfield.map(_n_is_sf), 29, 2, 0b10), 16, 6, 0),  # UXTB/UXTH, UBFX #0
    extract.map(_ror_alias),
)
ALL = st.one_of(pc_rel, add_sub_imm, logical_imm, move_wide, bitfield.map(_n_is_sf), extract.map(_n_is_sf))


@settings(max_examples=600, deadline=None, derandomize=True)
@given(pc_rel, machine)
def test_adr_adrp(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(add_sub_imm, machine)
def test_add_sub_immediate(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(add_sub_tags, machine)
def test_add_sub_immediate_with_tags_is_undefined(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=800, deadline=None, derandomize=True)
@given(logical_imm, machine)
def test_logical_immediate(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(move_wide, machine)
def test_move_wide(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=800, deadline=None, derandomize=True)
@given(st.one_of(bitfield, bitfield.map(_n_is_sf)), machine)
def test_bitfield(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.one_of(extract, extract.map(_n_is_sf)), machine)
def test_extract(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(aliases, machine)
def test_aliases(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(fields((29, choice(range(8))), (26, const(0b100)), (0, uniform(26))), machine)
def test_any_word_in_group(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(st.lists(ALL, min_size=2, max_size=8), machine)
def test_streams(words: list[int], m: dict) -> None:
    check_stream(words, **m)


# Unallocated or unimplemented encodings (Rd = 0, Rn = 1, Rm = 2).
RESERVED = {
    "AND (immediate), sf=0, N=1": encode((23, 0b100100), (22, 1), (5, 1)),
    "ORR (immediate), all-ones element": encode((31, 1), (29, 1), (23, 0b100100), (22, 1), (10, 63), (5, 1)),
    "EOR (immediate), N=0, imms=111111": encode((31, 1), (29, 2), (23, 0b100100), (10, 63), (5, 1)),
    "ANDS (immediate), all-ones 2-bit element": encode((31, 1), (29, 3), (23, 0b100100), (10, 0b111101), (5, 1)),
    "MOVZ, sf=0, hw=2": encode((29, 2), (23, 0b100101), (21, 2), (5, 1)),
    "MOVK, sf=0, hw=3": encode((29, 3), (23, 0b100101), (21, 3), (5, 1)),
    "move wide, opc=01": encode((31, 1), (29, 1), (23, 0b100101), (5, 1)),
    "SBFM, sf=1, N=0": encode((31, 1), (23, 0b100110), (10, 7), (5, 1)),
    "UBFM, sf=0, N=1": encode((29, 2), (23, 0b100110), (22, 1), (10, 7), (5, 1)),
    "BFM, sf=0, immr=32": encode((29, 1), (23, 0b100110), (16, 32), (10, 7), (5, 1)),
    "UBFM, sf=0, imms=33": encode((29, 2), (23, 0b100110), (10, 33), (5, 1)),
    "bitfield, opc=11": encode((31, 1), (29, 3), (23, 0b100110), (22, 1), (5, 1)),
    "EXTR, sf=0, imms=32": encode((23, 0b100111), (16, 2), (10, 32), (5, 1)),
    "EXTR, sf=1, N=0": encode((31, 1), (23, 0b100111), (16, 2), (5, 1)),
    "EXTR, o0=1": encode((31, 1), (23, 0b100111), (22, 1), (21, 1), (16, 2), (5, 1)),
    "EXTR, op21=01": encode((31, 1), (29, 1), (23, 0b100111), (22, 1), (16, 2), (5, 1)),
    "ADDG (FEAT_MTE)": encode((31, 1), (23, 0b100011), (16, 1), (5, 1)),
    "SMAX (immediate) (FEAT_CSSC)": encode((31, 1), (22, 0b1000111), (10, 5), (5, 1)),
}


@pytest.mark.parametrize("word", RESERVED.values(), ids=RESERVED.keys())
@settings(max_examples=3, deadline=None, derandomize=True)
@given(m=machine)
def test_reserved_encodings_are_undefined(word: int, m: dict) -> None:
    assert check_stream([word], **m).uc_exception == 1  # EXCP_UDEF; check_stream compared the rest


def _rn_near_immediate(word: int, rng: random.Random, nzcv: int) -> tuple[int, dict]:
    """(word, machine state) with Rn (or SP) a neighbour of the immediate of ADD/SUB."""
    m = machine_state(rng, nzcv)
    imm = ((word >> 10) & 0xFFF) << (12 * ((word >> 22) & 1))
    value = neighbour(rng, imm)
    if rng.randrange(2):  # a W operand with junk above it
        value = (value & 0xFFFF_FFFF) | rng.getrandbits(32) << 32
    if (word >> 5) & 31 == 31:
        m["sp"] = value
    else:
        m["x"][(word >> 5) & 31] = value
    return word, m


@settings(max_examples=600, deadline=None, derandomize=True)
@given(st.builds(_rn_near_immediate, add_sub_imm, rngs, st.integers(0, 15)))
def test_add_sub_immediate_flags_near_the_immediate(case: tuple[int, dict]) -> None:
    word, m = case
    check_stream([word], **m)
