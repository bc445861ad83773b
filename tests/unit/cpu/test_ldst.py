"""Loads and stores (Arm ARM C4.1.88) against Unicorn.

Each example builds one instruction (or a short stream) from its encoding fields, points the
base register so that every access is aligned and inside the oracle's data window (Unicorn does
not check alignment; armvisor, MMU off, would fault), fills the window and the registers with
random and edge values, and compares registers, SP, PC and the window after each instruction.
SP bases stay 16-byte aligned (QEMU does not implement the SP alignment check).

CONSTRAINED UNPREDICTABLE cases are not compared (writeback with Rn == Rt, LDP/LDXP with
Rt == Rt2, STXR with Rs == Rt/Rn, store-exclusive of another size than the load-exclusive).
"""

from __future__ import annotations

import random
from math import lcm

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from unicorn import UcError
from unicorn.arm64_const import UC_CPU_ARM64_MAX

from armvisor.arch.sysregs import ESR_EL1
from armvisor.cpu import Budget
from support.oracle import CODE, DATA, DATA_SIZE, RAM, VBAR, Pair, check_stream

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1
SP = 31
EDGES = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
         1 << 32, (1 << 63) - 1, 1 << 63, (1 << 64) - 2, (1 << 64) - 1]
value = st.one_of(st.sampled_from(EDGES), st.integers(0, MASK64), st.integers(0, MASK32))
registers = st.lists(value, min_size=31, max_size=31)
reg = st.one_of(st.sampled_from([0, 1, 30, 31]), st.integers(0, 31))
NOP, CLREX = 0xD503201F, 0xD503305F
FAST = settings(max_examples=250, deadline=None, derandomize=True)


def bits(draw, width: int) -> int:
    return draw(st.integers(0, (1 << width) - 1))


def window(seed: int) -> bytes:
    """Random contents of the data window, half of the bytes 0x00, 0x7F, 0x80 or 0xFF."""
    rng = random.Random(seed)
    return bytes(rng.choice((0x00, 0x7F, 0x80, 0xFF)) if rng.random() < 0.5 else rng.randrange(256)
                 for _ in range(DATA_SIZE))


def place(draw, is_sp: bool, lo: int, hi: int, step: int, nbytes: int, align: int) -> tuple[int, int]:
    """Draw (base, offset) with offset a multiple of ``step`` in [lo, hi] and base + offset an
    ``align``-aligned address of an ``nbytes`` access inside the window; SP stays 16-aligned."""
    if is_sp:
        unit = lcm(step, align)
        off = unit * draw(st.integers(-(-max(lo, -DATA_SIZE) // unit), min(hi, DATA_SIZE) // unit))
        first, last = -(-(DATA - off) // 16), (DATA + DATA_SIZE - nbytes - off) // 16
        return 16 * draw(st.integers(first, last)), off
    ea = DATA + align * draw(st.integers(0, (DATA_SIZE - nbytes) // align))
    off = step * draw(st.integers(-(-lo // step), hi // step))
    return (ea - off) & MASK64, off


def machine(draw, n: int, base: int, **overrides: int) -> dict:
    """Random registers and window with Rn (or SP) = base and the given X registers."""
    x = draw(registers)
    for r, v in overrides.items():
        x[int(r[1:])] = v
    m = {"x": x, "data": window(draw(st.integers(0, 1 << 32)))}
    if n == SP:
        m["sp"] = base
    else:
        x[n] = base
    return m


def ldst_imm(size: int, opc: int, form: int, imm: int, n: int, t: int) -> int:
    """LDR/STR immediate: form 0-3 = imm9 with op4 (unscaled, post, unprivileged, pre),
    form 4 = unsigned offset (imm12)."""
    if form == 4:
        return size << 30 | 0b111001 << 24 | opc << 22 | imm << 10 | n << 5 | t
    return size << 30 | 0b111000 << 24 | opc << 22 | (imm & 0x1FF) << 12 | form << 10 | n << 5 | t


@FAST
@given(st.data())
def test_single_immediate(data) -> None:
    """LDR/STR/LDRB/LDRSH/... with unsigned, unscaled, unprivileged, pre- and post-index
    offsets, all size:opc (unallocated ones and PRFM included)."""
    draw = data.draw
    size, opc, form, n, t = bits(draw, 2), bits(draw, 2), draw(st.integers(0, 4)), draw(reg), draw(reg)
    nbytes = 1 << size
    writeback = form in (1, 3)
    assume(not (writeback and n == t != SP))
    if form == 4:
        base, off = place(draw, n == SP, 0, 4095 * nbytes, nbytes, nbytes, nbytes)
        imm = off >> size
    elif form == 1:
        base, _ = place(draw, n == SP, 0, 0, 1, nbytes, nbytes)
        imm = draw(st.integers(-256, 255))
    else:
        base, imm = place(draw, n == SP, -256, 255, 1, nbytes, nbytes)
    check_stream([ldst_imm(size, opc, form, imm, n, t)], **machine(draw, n, base))


def extend(v: int, option: int, shift: int) -> int:
    """ExtendReg(Rm, option, shift) for the allocated options."""
    if option == 0b010:
        v &= MASK32
    elif option == 0b110:
        v = (v & MASK32) - ((v & 1 << 31) << 1)
    return (v << shift) & MASK64


@FAST
@given(st.data())
def test_register_offset(data) -> None:
    """LDR/STR (register) with every option (reserved ones UNDEFINED) and S, incl. PRFM."""
    draw = data.draw
    size, opc, option, s = bits(draw, 2), bits(draw, 2), bits(draw, 3), bits(draw, 1)
    n, m, t = draw(reg), draw(reg), draw(reg)
    assume(m != n or n == SP)
    shift, nbytes = size * s, 1 << size
    word = (size << 30 | 0b111000 << 24 | opc << 22 | 1 << 21 | m << 16 | option << 13 | s << 12
            | 0b10 << 10 | n << 5 | t)
    rm = draw(value) if m != 31 else 0
    if n == SP and option & 0b010:
        # SP stays aligned: Rm holds a small offset (garbage above bit 31 for the W extends)
        w_extend = option in (0b010, 0b110)
        lo = 0 if option == 0b010 else -2048
        base, off = place(draw, True, lo, 0 if m == 31 else 2048, 1 << shift, nbytes, nbytes)
        garbage = rm & ~MASK32 & MASK64 if w_extend else 0
        rm = ((off >> shift) & (MASK32 if w_extend else MASK64)) | garbage
    else:
        ea = DATA + nbytes * draw(st.integers(0, DATA_SIZE // nbytes - 1))
        base = (ea - extend(rm, option, shift)) & MASK64
    overrides = {} if m == 31 else {f"x{m}": rm}
    check_stream([word], **machine(draw, n, base, **overrides))


@FAST
@given(st.integers(0, 3), st.integers(0, DATA_SIZE // 8 - 1), st.integers(-4, 8), reg, registers)
def test_literal(opc: int, slot: int, code_slot: int, t: int, x: list[int]) -> None:
    """LDR (literal) W/X, LDRSW (literal), PRFM (literal), pointing into the data window or
    at the code itself (the instruction is preceded by NOPs so negative offsets stay in RAM)."""
    nops = 8
    pc = CODE + 4 * nops
    ea = DATA + 8 * slot if code_slot == 0 else pc + 8 * code_slot
    word = opc << 30 | 0b011000 << 24 | (((ea - pc) >> 2) & 0x7FFFF) << 5 | t
    check_stream([NOP] * nops + [word], x=x, data=window(slot))


@FAST
@given(st.data())
def test_pair(data) -> None:
    """LDP/STP/LDPSW/LDNP/STNP, offset/pre/post, every opc (11 and STGP UNDEFINED here)."""
    draw = data.draw
    opc, mode, load = bits(draw, 2), bits(draw, 2), bits(draw, 1)
    n, t, t2 = draw(reg), draw(reg), draw(reg)
    assume(not (load and t == t2))
    assume(not (mode in (0b01, 0b11) and n in (t, t2) and n != SP))
    nbytes = 8 if opc & 2 else 4
    if mode == 0b01:
        base, _ = place(draw, n == SP, 0, 0, 1, 2 * nbytes, nbytes)
        off = nbytes * draw(st.integers(-64, 63))
    else:
        base, off = place(draw, n == SP, -64 * nbytes, 63 * nbytes, nbytes, 2 * nbytes, nbytes)
    imm7 = (off // nbytes) & 0x7F
    word = opc << 30 | 0b101 << 27 | mode << 23 | load << 22 | imm7 << 15 | t2 << 10 | n << 5 | t
    check_stream([word], **machine(draw, n, base))


def exclusive(size: int, o2: int, load: int, o1: int, rs: int, o0: int, rt2: int, n: int, t: int) -> int:
    """An encoding of the load/store exclusive, ordered and compare-and-swap classes."""
    return (size << 30 | 0b001000 << 24 | o2 << 23 | load << 22 | o1 << 21 | rs << 16 | o0 << 15
            | rt2 << 10 | n << 5 | t)


@FAST
@given(st.data())
def test_exclusive_streams(data) -> None:
    """LDXR/LDAXR then STXR/STLXR (B/H/W/X) to the same address succeed; a store-exclusive
    alone, to another address or after CLREX fails (status 1, no write)."""
    draw = data.draw
    size, n, t, rs, t_st = bits(draw, 2), draw(reg), draw(reg), draw(reg), draw(reg)
    kind = draw(st.sampled_from(["pair", "alone", "elsewhere", "clrex"]))
    assume(t != n and rs not in (t_st, n))
    nbytes = 1 << size
    base, _ = place(draw, n == SP, 0, 0, 1, 16, 16)
    ldxr = exclusive(size, 0, 1, 0, 31, bits(draw, 1), 31, n, t)
    stxr = exclusive(size, 0, 0, 0, rs, bits(draw, 1), 31, n, t_st)
    m = machine(draw, n, base)
    if kind == "alone":
        words = [stxr]
    elif kind == "pair":
        words = [ldxr, stxr]
    elif kind == "clrex":
        words = [ldxr, CLREX, stxr]
    else:
        assume(n != SP)
        other = draw(st.sampled_from([r for r in range(31) if r not in (n, t, rs, t_st)]))
        m["x"][other] = base + nbytes * draw(st.integers(1, 8))
        words = [ldxr, exclusive(size, 0, 0, 0, rs, 0, 31, other, t_st)]
    pair = check_stream(words, **m)
    assert pair.cpu.state.exclusive is None


@FAST
@given(st.data())
def test_exclusive_pair_streams(data) -> None:
    """LDXP/LDAXP then STXP/STLXP, W and X pairs (aligned to the pair), and STXP alone."""
    draw = data.draw
    z, n, t, t2, rs, s1, s2 = (bits(draw, 1), *(draw(reg) for _ in range(6)))
    assume(t != t2 and n not in (t, t2) and rs not in (s1, s2, n))
    base, _ = place(draw, n == SP, 0, 0, 1, 16, 16)
    ldxp = exclusive(2 | z, 0, 1, 1, 31, bits(draw, 1), t2, n, t)
    stxp = exclusive(2 | z, 0, 0, 1, rs, bits(draw, 1), s2, n, s1)
    words = [stxp] if draw(st.booleans()) else [ldxp, stxp]
    check_stream(words, **machine(draw, n, base))


@FAST
@given(st.data())
def test_load_acquire_store_release(data) -> None:
    """LDAR/STLR (B/H/W/X)."""
    draw = data.draw
    size, load, n, t = bits(draw, 2), bits(draw, 1), draw(reg), draw(reg)
    base, _ = place(draw, n == SP, 0, 0, 1, 1 << size, 1 << size)
    check_stream([exclusive(size, 1, load, 0, 31, 1, 31, n, t)], **machine(draw, n, base))


@FAST
@given(st.data())
def test_lse_atomics(data) -> None:
    """LDADD/LDCLR/LDEOR/LDSET/LDSMAX/LDSMIN/LDUMAX/LDUMIN/SWP with A/R, B/H/W/X, Rt = XZR
    (the ST<op> aliases) included."""
    draw = data.draw
    size, a, r, o3opc = bits(draw, 2), bits(draw, 1), bits(draw, 1), draw(st.integers(0, 8))
    rs, n, t = draw(reg), draw(reg), draw(reg)
    # Unicorn compares LDSMAX/LDSMIN B/H/W operands unsigned, against the Arm ARM's
    # MemAtomicOp_SMAX/SMIN (SInt of the datasize-bit values): tested in test_ldst_faults.py.
    assume(size == 3 or o3opc not in (0b0100, 0b0101))
    base, _ = place(draw, n == SP, 0, 0, 1, 1 << size, 1 << size)
    word = size << 30 | 0b111000 << 24 | a << 23 | r << 22 | 1 << 21 | rs << 16 | o3opc << 12 | n << 5 | t
    check_stream([word], cpu_model=UC_CPU_ARM64_MAX, **machine(draw, n, base))


@FAST
@given(st.data())
def test_compare_and_swap(data) -> None:
    """CAS (B/H/W/X) and CASP (W/X pairs, even registers), matching or not."""
    draw = data.draw
    pair = draw(st.booleans())
    size = 2 + bits(draw, 1) if pair else bits(draw, 2)
    rs, t, n = draw(reg), draw(reg), draw(reg)
    if pair:
        rs, t = rs & ~1, t & ~1
    nbytes = (2 if pair else 1) << size
    base, _ = place(draw, n == SP, 0, 0, 1, nbytes, nbytes)
    m = machine(draw, n, base)
    if draw(st.booleans()):  # make the comparison succeed
        x = m["x"] + [0]
        expected = x[rs] & ((1 << (8 << size)) - 1)
        if pair:
            expected |= (x[rs + 1] & ((1 << (8 << size)) - 1)) << (8 << size)
        ea = base - DATA
        m["data"] = m["data"][:ea] + expected.to_bytes(nbytes, "little") + m["data"][ea + nbytes:]
    acquire, release = bits(draw, 1), bits(draw, 1)
    if pair:  # CASP: size<0> is bit 30, o2 = 0
        word = (size & 1) << 30 | exclusive(0, 0, acquire, 1, rs, release, 31, n, t)
    else:
        word = exclusive(size, 1, acquire, 1, rs, release, 31, n, t)
    check_stream([word], cpu_model=UC_CPU_ARM64_MAX, **m)


# -- decoding: which encodings of the group are UNDEFINED --------------------------------------

# Classes of C4.1.88 as (mask, value) over which the other bits are random, plus the whole group.
CLASSES = [
    (0x0A00_0000, 0x0800_0000),  # the group: op0 = x1x0
    (0xBFBF_0000, 0x0C00_0000), (0xBFA0_0000, 0x0C80_0000),  # AdvSIMD multiple structures
    (0xBF9F_0000, 0x0D00_0000), (0xBF80_0000, 0x0D80_0000),  # AdvSIMD single structure
    (0x3F00_0000, 0x0800_0000),  # exclusive / ordered / CAS
    (0x3B00_0000, 0x1800_0000),  # literal
    (0x3A00_0000, 0x2800_0000),  # pairs
    (0x3B20_0000, 0x3800_0000),  # imm9 forms
    (0x3B20_0000, 0x3820_0000),  # register offset, atomics, PAC
    (0x3B00_0000, 0x3900_0000),  # unsigned offset
    (0x3F20_0000, 0x1920_0000), (0x3F00_0000, 0x1900_0000), (0xFF00_0000, 0xD900_0000),  # RCPC2, MOPS, MTE
]


def _armvisor_undefined(pair: Pair) -> bool:
    stop = pair.cpu.run(1)
    s = pair.cpu.state
    return isinstance(stop, Budget) and s.pc == VBAR + 0x200 and s.sr[ESR_EL1] >> 26 == 0


def _unicorn_undefined(pair: Pair) -> bool:
    try:
        pair.uc.emu_start(CODE, RAM + 0x10000, count=1)
    except UcError:
        return False  # a memory error: the encoding is allocated
    return pair.uc_exception == 1  # EXCP_UDEF


# LSE encodings (Unicorn's Cortex-A57 model has no FEAT_LSE; armvisor implements it).
LSE_NAMES = {"lse_atomic", "swp", "cas", "casp"}


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(st.sampled_from(CLASSES), st.integers(0, (1 << 32) - 1), registers)
def test_decode_matches_unicorn(cls: tuple[int, int], raw: int, x: list[int]) -> None:
    """UNDEFINED exactly when Unicorn's Cortex-A57 (ARMv8.0) says so, for random encodings of
    every class; SIMD&FP encodings that are allocated take the FP trap (CPACR_EL1.FPEN=0)."""
    from armvisor.cpu.isa import ldst

    mask, val = cls
    word = (raw & ~mask) | val
    hit = ldst.TABLE.lookup(word)
    assume(hit is None or hit[0] not in LSE_NAMES)
    pair = Pair([word], x=x)
    assert _armvisor_undefined(pair) == _unicorn_undefined(pair), f"{word:#010x}: {hit and hit[0]}"
