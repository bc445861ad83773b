"""Branches against Unicorn (Cortex-A57 model): random encodings and register values.

Each stream is the branch followed by NOPs; targets land inside the stream (execution goes on
and is compared at every step) or anywhere else in RAM below the oracle's vectors (the oracle
compares the state once the PC has left the stream). Targets outside RAM are not compared:
Unicorn fetches from the target before it stops and reports an unmapped fetch, where the
architecture (and armvisor) take the Instruction Abort only when that instruction executes. ERET/DRPS are tested in test_exceptions.py (they need exception state).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from support.oracle import CODE, VBAR, check_stream
from unit.cpu.test_exceptions import RAM, machine, run, syndrome

NOP = 0xD503201F
STREAM = 8
EDGES = [0, 1, 2, 2**31, 2**31 - 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1, 0x7FFFFFFF]
RAM_WORDS = (VBAR - CODE) // 4  # branch targets: CODE .. below the vectors
values = st.one_of(st.sampled_from(EDGES), st.integers(0, 2**64 - 1),
                   st.integers(0, STREAM - 1).map(lambda k: CODE + 4 * k),
                   st.integers(0, 63).map(lambda b: 1 << b))
registers = st.lists(values, min_size=31, max_size=31)
targets = st.one_of(st.integers(0, STREAM - 1), st.integers(0, RAM_WORDS - 1)).map(lambda k: CODE + 4 * k)
target_registers = st.lists(targets, min_size=31, max_size=31)
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)


def _offset(width: int):
    """Branch offsets (in words) landing in the stream or elsewhere in RAM below the vectors."""
    return st.one_of(st.integers(0, STREAM), st.integers(0, min(RAM_WORDS, 1 << (width - 1)) - 1))


def _stream(word: int) -> list[int]:
    return [word] + [NOP] * (STREAM - 1)


@given(link=st.booleans(), imm=_offset(26), x=registers)
@SETTINGS
def test_b_bl(link: bool, imm: int, x: list[int]) -> None:
    check_stream(_stream((0x94000000 if link else 0x14000000) | (imm & 0x3FFFFFF)), x=x)


@given(cond=st.integers(0, 15), imm=_offset(19), nzcv=st.integers(0, 15),
       o1=st.sampled_from([0, 0, 0, 1]), o0=st.sampled_from([0, 0, 0, 1]))
@SETTINGS
def test_b_cond(cond: int, imm: int, nzcv: int, o1: int, o0: int) -> None:
    """o1 (bit 24) and o0 (bit 4, BC.cond in FEAT_HBC) set are unallocated in ARMv8.0."""
    word = 0x54000000 | o1 << 24 | (imm & 0x7FFFF) << 5 | o0 << 4 | cond
    check_stream(_stream(word), nzcv=nzcv)


@given(sf=st.integers(0, 1), nonzero=st.integers(0, 1), rt=st.integers(0, 31), imm=_offset(19),
       x=registers)
@SETTINGS
def test_cbz_cbnz(sf: int, nonzero: int, rt: int, imm: int, x: list[int]) -> None:
    word = sf << 31 | 0x34000000 | nonzero << 24 | (imm & 0x7FFFF) << 5 | rt
    check_stream(_stream(word), x=x)


@given(bit=st.integers(0, 63), nonzero=st.integers(0, 1), rt=st.integers(0, 31), imm=_offset(14),
       x=registers)
@SETTINGS
def test_tbz_tbnz(bit: int, nonzero: int, rt: int, imm: int, x: list[int]) -> None:
    word = (bit >> 5) << 31 | 0x36000000 | nonzero << 24 | (bit & 31) << 19 | (imm & 0x3FFF) << 5 | rt
    check_stream(_stream(word), x=x)


@given(opc=st.sampled_from([0b0000, 0b0001, 0b0010, 0b0011, 0b0110, 0b0111, 0b1000, 0b1001, 0b1111]),
       op2=st.sampled_from([0b11111, 0b11111, 0b11111, 0b01111]),
       op3=st.sampled_from([0, 0, 0, 0b000010, 0b000011, 0b000001]),
       rn=st.integers(0, 31), op4=st.sampled_from([0, 0, 0, 0b11111, 0b00001]), x=target_registers)
@SETTINGS
def test_branch_register(opc: int, op2: int, op3: int, rn: int, op4: int, x: list[int]) -> None:
    """BR/BLR/RET and the pointer-authentication and unallocated encodings around them (UNDEFINED
    on a PE without FEAT_PAuth). XZR (Rn=31) as target is 0, outside RAM: not compared."""
    if rn == 31 and opc < 0b0100 and op2 == 0b11111 and op3 == 0 and op4 == 0:
        rn = 30
    word = 0xD6000000 | opc << 21 | op2 << 16 | op3 << 10 | rn << 5 | op4
    check_stream(_stream(word), x=x)


def test_blr_x30_reads_the_target_before_linking() -> None:
    cpu = machine("blr x30")
    cpu.state.x[30] = RAM + 0x100
    run(cpu, 1)
    assert cpu.state.pc == RAM + 0x100 and cpu.state.x[30] == RAM + 4


def test_ret_defaults_to_x30_and_xzr_targets() -> None:
    cpu = machine("ret\n")
    cpu.state.x[30] = RAM + 0x40
    run(cpu, 1)
    assert cpu.state.pc == RAM + 0x40
    cpu = machine([0xD61F03E0])  # BR XZR: branch to 0
    run(cpu, 1)
    assert cpu.state.pc == 0


def test_cbz_on_wzr_always_branches() -> None:
    cpu = machine("cbz wzr, . + 0x80")
    cpu.state.x[31] = 0
    run(cpu, 1)
    assert cpu.state.pc == RAM + 0x80


def test_drps_and_eretaa_are_undefined() -> None:
    for word in (0xD6BF03E0, 0xD69F0BFF):
        cpu = machine([word])
        run(cpu, 1)
        assert syndrome(cpu) == (0, 0)
