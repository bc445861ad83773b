"""Data processing -- register (Arm ARM C4.1.95) against Unicorn: random encodings (reserved
and unimplemented-extension ones included, which both machines must treat as UNDEFINED),
random and edge register values, random flags and SP."""

from __future__ import annotations

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
    rarely,
    reg,
    sf,
    uniform,
    with_related_operands,
)
from support.oracle import check_stream

cond = choice(range(16))
logical = fields((31, sf), (29, choice(range(4))), (24, const(0b01010)), (22, choice(range(4))), (21, bit),
                 (16, reg), (10, imm6), (5, reg), (0, reg))
add_sub_shifted = fields((31, sf), (29, choice(range(4))), (24, const(0b01011)), (22, choice(range(4))),
                         (16, reg), (10, imm6), (5, reg), (0, reg))
add_sub_extended = fields((31, sf), (29, choice(range(4))), (24, const(0b01011)), (22, rarely),
                          (21, const(1)), (16, reg), (13, choice(range(8))), (10, choice(range(8))),
                          (5, reg), (0, reg))
# op3 (bits 15:10) != 0: RMIF, SETF8, SETF16 (FEAT_FlagM) or unallocated.
add_sub_carry = fields((31, sf), (29, choice(range(4))), (21, const(0b11010000)), (16, reg),
                       (10, choice([0] * 64 + list(range(64)))), (5, reg), (0, reg))
cond_compare = fields((31, sf), (30, bit), (29, choice((1, 1, 1, 0))), (21, const(0b11010010)), (16, reg),
                      (12, cond), (11, bit), (10, rarely), (5, reg), (4, rarely), (0, choice(range(16))))
cond_select = fields((31, sf), (30, bit), (29, rarely), (21, const(0b11010100)), (16, reg), (12, cond),
                     (10, choice((0, 1, 0, 1, 2, 3))), (5, reg), (0, reg))
# opcode2 (bits 20:16) 00001 is FEAT_PAuth; opcodes 000110.. are FEAT_CSSC or unallocated.
one_source = fields((31, sf), (30, const(1)), (29, rarely), (21, const(0b11010110)),
                    (16, choice([0] * 20 + [1] * 4 + list(range(32)))),
                    (10, choice([*range(8)] * 8 + list(range(64)))), (5, reg), (0, reg))
two_source_opcodes = [0b000010, 0b000011, 0b001000, 0b001001, 0b001010, 0b001011, *range(0b010000, 0b011000)]
two_source = fields((31, sf), (30, const(0)), (29, rarely), (21, const(0b11010110)), (16, reg),
                    (10, choice(two_source_opcodes * 4 + list(range(64)))), (5, reg), (0, reg))


def _mulh_ra(word: int) -> int:
    """SMULH/UMULH (op31 = x10, o0 = 0) with Ra = 0b11111: other Ra values are CONSTRAINED
    UNPREDICTABLE."""
    is_mulh = (word >> 21) & 0b11_11111_011 == 0b00_11011_010 and not (word >> 15) & 1
    return word | 31 << 10 if is_mulh else word


op31 = choice((0, 0, 1, 1, 2, 2, 5, 5, 6, 6, 3, 4, 7))  # allocated values favoured
three_source = fields((31, sf), (29, rarely), (24, const(0b11011)), (21, op31), (16, reg), (15, bit), (10, reg),
                      (5, reg), (0, reg)).map(_mulh_ra)

aliases = st.one_of(
    force(force(force(logical, 29, 2, 0b01), 10, 6, 0), 5, 5, 31),  # MOV (register), MVN
    force(force(logical, 29, 2, 0b11), 0, 5, 31),  # TST (shifted register)
    force(add_sub_shifted, 5, 5, 31),  # NEG, NEGS
    force(force(add_sub_shifted, 29, 1, 1), 0, 5, 31),  # CMP, CMN (shifted register)
    force(force(force(add_sub_extended, 22, 2, 0), 0, 5, 31), 5, 5, 31),  # ADD/SUB/CMP SP, SP, Rm{, ext}
    force(force(add_sub_carry, 10, 6, 0), 5, 5, 31),  # NGC, NGCS
    force(force(force(cond_select, 29, 1, 0), 16, 5, 31), 5, 5, 31),  # CSET, CSETM
    force(three_source, 10, 5, 31),  # MUL, MNEG, SMULL, UMULL, SMNEGL, UMNEGL
    force(force(force(three_source, 29, 3, 0b100), 21, 2, 0b10), 15, 1, 0).map(_mulh_ra),  # SMULH, UMULH
)
ALL = st.one_of(logical, add_sub_shifted, add_sub_extended, add_sub_carry, cond_compare, cond_select,
                one_source, two_source, three_source)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(logical, machine)
def test_logical_shifted_register(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(add_sub_shifted, machine)
def test_add_sub_shifted_register(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(add_sub_extended, machine)
def test_add_sub_extended_register(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(add_sub_carry, machine)
def test_add_sub_with_carry(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=250, deadline=None, derandomize=True)
@given(cond_compare, machine)
def test_conditional_compare(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=250, deadline=None, derandomize=True)
@given(cond_select, machine)
def test_conditional_select(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(one_source, machine)
def test_one_source(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=700, deadline=None, derandomize=True)
@given(two_source, machine)
def test_two_source(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(three_source, machine)
def test_three_source(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(aliases, machine)
def test_aliases(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(fields((29, choice(range(8))), (25, const(0b101)), (0, uniform(25))).map(_mulh_ra), machine)
def test_any_word_in_group(word: int, m: dict) -> None:
    check_stream([word], **m)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(ALL, min_size=2, max_size=8), machine)
def test_streams(words: list[int], m: dict) -> None:
    check_stream(words, **m)


# Unallocated or unimplemented encodings (Rd = 0, Rn = 1, Rm = 2 unless said otherwise).
RESERVED = {
    "AND (shifted register), sf=0, imm6=32": encode((24, 0b01010), (16, 2), (10, 32), (5, 1)),
    "ADD (shifted register), shift=ROR": encode((31, 1), (24, 0b01011), (22, 3), (16, 2), (5, 1)),
    "SUB (shifted register), sf=0, imm6=40": encode((30, 1), (24, 0b01011), (16, 2), (10, 40), (5, 1)),
    "ADD (extended register), opt=01": encode((31, 1), (24, 0b01011), (22, 1), (21, 1), (16, 2), (5, 1)),
    "ADDS (extended register), imm3=5": encode((31, 1), (29, 1), (24, 0b01011), (21, 1), (16, 2), (10, 5), (5, 1)),
    "RMIF (FEAT_FlagM)": encode((31, 1), (29, 1), (21, 0b11010000), (15, 5), (10, 1), (5, 1)),
    "SETF8 (FEAT_FlagM)": encode((29, 1), (21, 0b11010000), (10, 0b000010), (5, 1), (0, 0b1101)),
    "CCMP, S=0": encode((31, 1), (30, 1), (21, 0b11010010), (16, 2), (5, 1)),
    "CCMP, o2=1": encode((31, 1), (30, 1), (29, 1), (21, 0b11010010), (10, 1), (5, 1)),
    "CCMN (immediate), o3=1": encode((29, 1), (21, 0b11010010), (16, 2), (11, 1), (5, 1), (4, 1)),
    "CSEL, S=1": encode((31, 1), (29, 1), (21, 0b11010100), (16, 2), (5, 1)),
    "CSEL, op2=10": encode((21, 0b11010100), (16, 2), (11, 1), (5, 1)),
    "REV (32-bit) with opcode 000011": encode((30, 1), (21, 0b11010110), (10, 0b000011), (5, 1)),
    "RBIT, S=1": encode((31, 1), (30, 1), (29, 1), (21, 0b11010110), (5, 1)),
    "PACIA (FEAT_PAuth)": encode((31, 1), (30, 1), (21, 0b11010110), (16, 1), (5, 1)),
    "XPACI (FEAT_PAuth)": encode((31, 1), (30, 1), (21, 0b11010110), (16, 1), (10, 0b010000), (5, 31)),
    "CTZ (FEAT_CSSC)": encode((31, 1), (30, 1), (21, 0b11010110), (10, 0b000110), (5, 1)),
    "CRC32X, sf=0": encode((21, 0b11010110), (16, 2), (10, 0b010011), (5, 1)),
    "CRC32CB, sf=1": encode((31, 1), (21, 0b11010110), (16, 2), (10, 0b010100), (5, 1)),
    "SUBP (FEAT_MTE)": encode((31, 1), (21, 0b11010110), (16, 2), (5, 1)),
    "IRG (FEAT_MTE)": encode((31, 1), (21, 0b11010110), (16, 2), (10, 0b000100), (5, 1)),
    "PACGA (FEAT_PAuth)": encode((31, 1), (21, 0b11010110), (16, 2), (10, 0b001100), (5, 1)),
    "SMAX (FEAT_CSSC)": encode((31, 1), (21, 0b11010110), (16, 2), (10, 0b011000), (5, 1)),
    "UDIV, S=1": encode((31, 1), (29, 1), (21, 0b11010110), (16, 2), (10, 0b000010), (5, 1)),
    "SMADDL, sf=0": encode((24, 0b11011), (21, 0b001), (16, 2), (10, 3), (5, 1)),
    "UMULH, sf=0": encode((24, 0b11011), (21, 0b110), (16, 2), (10, 31), (5, 1)),
    "SMULH, o0=1": encode((31, 1), (24, 0b11011), (21, 0b010), (16, 2), (15, 1), (10, 31), (5, 1)),
    "3 source, op31=011": encode((31, 1), (24, 0b11011), (21, 0b011), (16, 2), (10, 3), (5, 1)),
    "3 source, op54=01": encode((31, 1), (29, 1), (24, 0b11011), (16, 2), (10, 3), (5, 1)),
    "op1=1, op2=0001": encode((31, 1), (21, 0b11010001), (16, 2), (5, 1)),
}


@pytest.mark.parametrize("word", RESERVED.values(), ids=RESERVED.keys())
@settings(max_examples=3, deadline=None, derandomize=True)
@given(m=machine)
def test_reserved_encodings_are_undefined(word: int, m: dict) -> None:
    assert check_stream([word], **m).uc_exception == 1  # EXCP_UDEF; check_stream compared the rest


@settings(max_examples=400, deadline=None, derandomize=True)
@given(with_related_operands(st.one_of(force(add_sub_shifted, 10, 6, 0), add_sub_carry, cond_compare)))
def test_flags_with_related_operands(case: tuple[int, dict]) -> None:
    word, m = case
    check_stream([word], **m)
