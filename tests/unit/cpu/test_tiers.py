"""Translated blocks (tier 1) against tier 0: random instruction streams, full state compared.

Every stream is drawn from the encodings that have emitters (the instructions tier 1 can
translate), with registers that mostly point into RAM so that loads and stores take the
translated fast path, and sometimes elsewhere (MMIO space, misaligned, the code page itself) so
that blocks hand instructions back to tier 0 mid-way. The same machine runs the stream twice:
once with translation switched off, once with every block head translated on first sight; the
stop, the instruction count, all registers, PSTATE, the system registers and all of RAM must
be equal. Budgets are cut at random points to check that no tier overshoots.
"""

from __future__ import annotations

import random
import re
import struct

import pytest

from armvisor.arch.sysregs import VBAR_EL1
from armvisor.cpu import Cpu, PhysicalMemory
from armvisor.cpu.emit import shapes

RAM = 0x4000_0000
RAM_SIZE = 0x1_0000
CODE = RAM
VBAR = RAM + 0x4000
DATA = RAM + 0x8000
HVC = 0xD4000002
NOP = 0xD503201F
STREAM = 40


def _emitter_patterns() -> list[tuple[int, int]]:
    """(mask, value) of every decode-table entry whose builder is an emitter."""
    cpu = Cpu()
    seen, out = set(), []
    for tables in cpu.groups:
        for table in tables:
            for mask, value, _name, builder in table.entries:
                if hasattr(builder, "emitter") and (mask, value) not in seen:
                    seen.add((mask, value))
                    out.append((mask, value))
    return out


PATTERNS = _emitter_patterns()


def _word(rng: random.Random, cpu: Cpu) -> int:
    """A random word of an emitter-backed encoding; branches only now and then, so that blocks
    get long."""
    while True:
        mask, value = rng.choice(PATTERNS)
        word = value | (rng.getrandbits(32) & ~mask & 0xFFFF_FFFF)
        em = cpu.emitted(word, CODE)
        if em is None:
            continue  # an unallocated encoding of the group: UNDEFINED
        if em.falls_through or rng.randrange(6) == 0:
            return word


def _conditional_branch(rng: random.Random, offset: int) -> int:
    """B.cond with any condition, CBZ/CBNZ or TBZ/TBNZ on a random register, to PC + 4 *
    ``offset``."""
    imm = offset & 0x7FFFF
    kind = rng.randrange(3)
    if kind == 0:
        return 0x54000000 | imm << 5 | rng.randrange(16)
    if kind == 1:
        return 0x34000000 | rng.randrange(2) << 31 | rng.randrange(2) << 24 | imm << 5 | rng.randrange(32)
    return (0x36000000 | rng.randrange(2) << 31 | rng.randrange(2) << 24 | rng.randrange(32) << 19
            | (imm & 0x3FFF) << 5 | rng.randrange(32))


def _loop(rng: random.Random, body: list[int]) -> list[int]:
    """``body``, with some forward conditional branches over a few of its instructions (if-then
    shapes inside loops), then a conditional branch back to its start."""
    out: list[int] = []
    for i, word in enumerate(body):
        room = len(body) - i
        if room > 2 and rng.randrange(4) == 0:
            out.append(_conditional_branch(rng, rng.randrange(2, min(room, 5))))
        out.append(word)
    return out + [_conditional_branch(rng, -len(out))]


def _compare_loop(rng: random.Random, body: list[int]) -> list[int]:
    """``body`` with a compare (CMP register or immediate, W or X) at its end or inside, then
    B.cond (any condition) back to the start."""
    sf = rng.randrange(2) << 31
    if rng.randrange(2):
        compare = sf | 0x6B00001F | rng.randrange(32) << 16 | rng.randrange(32) << 5  # cmp Rn, Rm
    else:
        compare = sf | 0x7100001F | rng.randrange(4096) << 10 | rng.randrange(32) << 5  # cmp Rn, #imm
    cut = rng.randrange(len(body) + 1) if rng.randrange(2) else len(body)  # code after the compare too
    words = body[:cut] + [compare] + body[cut:]
    back = -len(words)
    return words + [0x54000000 | (back & 0x7FFFF) << 5 | rng.randrange(14)]


def _register(rng: random.Random) -> int:
    kind = rng.randrange(10)
    if kind < 6:  # into the data window, mostly aligned
        return DATA + rng.randrange(0, 0x1000, rng.choice([1, 8, 8, 8, 16]))
    if kind == 6:
        return CODE + rng.randrange(0, 0x100, 8)  # stores here rewrite the code
    if kind == 7:
        return rng.choice([0x0900_0000, 0x0800_0000, 0, 1 << 63])  # MMIO, nothing, far away
    return rng.getrandbits(rng.choice([4, 12, 32, 64]))


def _machine(words: list[int], x: list[int], sp: int, nzcv: int, translate: bool) -> Cpu:
    image = bytearray(RAM_SIZE)
    image[:4 * len(words)] = b"".join(struct.pack("<I", w) for w in words)
    image[VBAR - RAM:VBAR - RAM + 0x800] = struct.pack("<I", HVC) * 0x200
    phys = PhysicalMemory()
    phys.add_ram(RAM, image)
    cpu = Cpu(phys)
    s = cpu.state
    s.x[:31] = x
    s.sp, s.nzcv, s.pc = sp, nzcv, CODE
    s.sr[VBAR_EL1] = VBAR
    cpu.tier1.enabled = translate
    if translate:
        cpu.tier1.threshold = 1
        cpu.tier1.translate(CODE)
    return cpu


def _snapshot(cpu: Cpu, stop) -> dict:
    s = cpu.state
    return {"stop": repr(stop), "icount": cpu.icount, "x": list(s.x[:31]), "sp": s.sp,
            "pstate": s.pstate, "pc": s.pc, "sr": dict(s.sr), "ram": cpu.phys.read(RAM, RAM_SIZE)}


def _compare(seed: int) -> None:
    rng = random.Random(seed)
    probe = Cpu()
    words = [_word(rng, probe) for _ in range(STREAM)] + [HVC]
    if seed % 4 == 3:  # a loop ending "cmp; b.cond" (NZCV kept lazily), half with memory accesses
        body = [w for w in words[:STREAM] if probe.emitted(w, CODE).falls_through
                and (seed % 8 == 7 or not re.search("LOAD|STORE", probe.emitted(w, CODE).code))]
        words = _compare_loop(rng, body[:rng.randrange(0, len(body) + 1)]) + [HVC]
    elif seed % 2:  # a loop: the body runs again while a condition holds (tier 2)
        body = [w for w in words[:STREAM] if probe.emitted(w, CODE).falls_through] or [NOP]
        words = _loop(rng, body[:rng.randrange(1, len(body) + 1)]) + [HVC]
    x = [_register(rng) for _ in range(31)]
    sp = DATA + rng.randrange(0, 0x1000, rng.choice([16, 16, 8]))
    nzcv = rng.randrange(16)
    budgets = [rng.randrange(1, STREAM + 2) for _ in range(2)] + [10 * STREAM]
    tier0, tier1 = (_trace(_machine(words, x, sp, nzcv, translate), budgets) for translate in (False, True))
    _assert_same(tier0, tier1, f"seed {seed} (budgets {budgets}, words {' '.join(f'{w:08x}' for w in words)})")


def _trace(cpu: Cpu, budgets: list[int]) -> list[dict]:
    """Snapshots after runs of ``budgets`` instructions, until a run stops otherwise."""
    trace = []
    for budget in budgets:
        stop = cpu.run(budget)
        trace.append(_snapshot(cpu, stop))
        if type(stop).__name__ != "Budget":
            break
    return trace


def _assert_same(tier0: list[dict], tier1: list[dict], context: str) -> None:
    for i, (a, b) in enumerate(zip(tier0, tier1)):
        diff = {k: (a[k], b[k]) for k in a if a[k] != b[k] and k != "ram"}
        if a["ram"] != b["ram"]:
            first = next(j for j in range(RAM_SIZE) if a["ram"][j] != b["ram"][j])
            diff["ram"] = f"first difference at {RAM + first:#x}"
        assert not diff, f"{context}, run {i}: {diff}"
    assert len(tier0) == len(tier1)


def _seeds(default: int, soak: int) -> list:
    """``default`` seeds for every run, then ``soak`` more marked slow."""
    return [*range(default), *(pytest.param(seed, marks=pytest.mark.slow) for seed in range(default, default + soak))]


@pytest.mark.parametrize("seed", _seeds(1000, 10_000))
def test_tier1_equals_tier0(seed: int) -> None:
    _compare(seed)


def test_translation_happened() -> None:
    """The comparison is not vacuous: streams are translated into blocks of many
    instructions, and some of them hand instructions back to tier 0."""
    rng = random.Random(1)
    probe = Cpu()
    counts = []
    for _ in range(20):
        words = [_word(rng, probe) for _ in range(STREAM)] + [HVC]
        cpu = _machine(words, [_register(rng) for _ in range(31)], DATA, 0, True)
        counts.append(cpu.tier1.entries[CODE][1])
    assert max(counts) >= 10 and sum(counts) / len(counts) >= 4


def test_shapes_are_bounded() -> None:
    """Emitters keep their text constant per shape: decoding thousands of random words of
    every emitter-backed encoding compiles a bounded number of tier-0 factories."""
    rng = random.Random(7)
    probe = Cpu()
    for _ in range(3000):
        _word(rng, probe)
    before = shapes()
    for _ in range(3000):
        _word(rng, probe)
    assert shapes() - before <= 5


def test_pc_relative_emitters_are_marked() -> None:
    """Emitters not marked ``pc_relative`` have their ops built once per instruction word
    (emit.emitter): their constants other than pc/npc must not depend on the address."""
    rng = random.Random(11)
    cpu = Cpu()
    for tables in cpu.groups:
        for table in tables:
            for mask, value, name, builder in table.entries:
                if not hasattr(builder, "emitter") or builder.pc_relative:
                    continue
                for _ in range(200):
                    word = value | (rng.getrandbits(32) & ~mask & 0xFFFF_FFFF)
                    a, b = builder.emitter(word, CODE), builder.emitter(word, CODE + 0x12340)
                    if a is None:
                        assert b is None
                        continue
                    assert not a.heads, f"{name}: has heads, so it is PC-relative"
                    strip = lambda em: (em.code, em.next, em.dabt_iss, list(em.consts.items())[:-2])  # noqa: E731
                    assert strip(a) == strip(b), f"{name} {word:#010x}: constants depend on the PC"


def test_store_by_another_pe_reaches_translated_code() -> None:
    """Two PEs on one memory: PE 1 has a hot loop translated; PE 0 rewrites an instruction of
    it (``add x0, x0, #1`` into ``#2``); PE 1's next run executes the new instruction."""
    image = bytearray(RAM_SIZE)
    loop = [0x91000400, 0xF1000421, 0x54FFFFC1, HVC]  # add x0,x0,#1; subs x1,x1,#1; b.ne; hvc
    image[:16] = struct.pack("<4I", *loop)
    image[0x1000:0x1008] = struct.pack("<2I", 0xB9000062, HVC)  # str w2, [x3]; hvc
    phys = PhysicalMemory()
    phys.add_ram(RAM, image)
    pe0, pe1 = Cpu(phys), Cpu(phys)
    for pe in (pe0, pe1):
        pe.state.sr[VBAR_EL1] = VBAR
    s1 = pe1.state
    s1.pc, s1.x[0], s1.x[1] = CODE, 0, 1000
    pe1.run(10_000)
    assert s1.x[0] == 1000 and CODE in pe1.tier1.entries
    s0 = pe0.state
    s0.pc, s0.x[2], s0.x[3] = CODE + 0x1000, 0x91000800, CODE
    pe0.run(10)
    assert CODE not in pe1.tier1.entries and CODE not in pe1.cache
    s1.pc, s1.x[1] = CODE, 10
    pe1.run(10_000)
    assert s1.x[0] == 1000 + 2 * 10


@pytest.mark.parametrize("budget", [1, 2, 999])
def test_branch_to_itself_spins_exactly(budget: int) -> None:
    """``b .`` is a loop of one instruction with no code: each run executes the budget."""
    cpu = _machine([0x14000000], [0] * 31, DATA, 0, True)
    for _ in range(3):
        assert type(cpu.run(budget)).__name__ == "Budget"
    assert cpu.icount == 3 * budget and cpu.state.pc == CODE
    assert cpu.tier1.entries[CODE][1] == -1


def test_blocks_of_equal_text_at_two_heads_stay_apart() -> None:
    """``ldr x1, [x2]; ret`` translated at two heads has the same text (code objects compare
    by value): a load from MMIO must still stop at the instruction of the block that ran."""
    words = struct.pack("<2I", 0xF9400041, 0xD65F03C0)  # ldr x1, [x2]; ret
    outcomes = []
    for translate in (False, True):
        image = bytearray(RAM_SIZE)
        image[0:8] = image[0x1000:0x1008] = words
        image[0x2000:0x2004] = struct.pack("<I", HVC)
        phys = PhysicalMemory()
        phys.add_ram(RAM, image)
        cpu = Cpu(phys)
        cpu.tier1.enabled = translate
        if translate:
            cpu.tier1.translate(CODE)
            cpu.tier1.translate(CODE + 0x1000)
        cpu.state.x[2], cpu.state.x[30], cpu.state.pc = 0x0900_0000, CODE + 0x2000, CODE
        outcomes.append(repr(cpu.run(100)))
    assert outcomes[0] == outcomes[1] and f"elr={CODE}" in outcomes[0]


def test_switching_translation_off_stops_it() -> None:
    """After translation is switched off (and decoded code flushed, as the KVM capability
    does), heads that were hot before are not translated again."""
    words = [0x91000400, 0xF1000421, 0x54FFFFC1, HVC]  # add; subs; b.ne; hvc
    cpu = _machine(words, [0] * 31, DATA, 0, False)
    cpu.tier1.enabled = True  # translated once the loop's head is hot, as in a real run
    cpu.state.x[1] = 1000
    cpu.run(10_000)
    assert CODE in cpu.tier1.entries
    cpu.tier1.enabled = False
    cpu.flush_decoded()
    cpu.state.pc, cpu.state.x[1] = CODE, 1000
    cpu.run(10_000)
    assert not cpu.tier1.entries and cpu.state.x[0] == 2000


# -- whole programs: calls between pages, heat and translation as in a real run ------------------
RET = 0xD65F03C0


def _straight(rng: random.Random, probe: Cpu, count: int) -> list[int]:
    return [w for w in (_word(rng, probe) for _ in range(count)) if probe.emitted(w, CODE).falls_through]


def _program(rng: random.Random, probe: Cpu) -> dict[int, list[int]]:
    """A loop at CODE that runs random code and calls two functions on other pages (often of
    equal text) a random number of times, then HVC."""
    f1 = _straight(rng, probe, rng.randrange(1, 12))
    f2 = list(f1) if rng.randrange(2) else _straight(rng, probe, 8)
    at1, at2 = CODE + 0x1000, CODE + 0x2000 + 4 * rng.randrange(8)
    body = _straight(rng, probe, 10)
    main = [0xD2800000 | rng.randrange(3, 40) << 5 | 28]  # movz x28, #N
    main += body[:rng.randrange(len(body) + 1)]
    main += [("bl", at1), *body[:2], ("bl", at2), 0xF100079C]  # ...; subs x28, x28, #1
    main += [("b.ne", CODE + 4), HVC]
    words = []
    for i, w in enumerate(main):
        pc = CODE + 4 * i
        if isinstance(w, tuple):
            kind, target = w
            off = (target - pc) >> 2
            w = 0x94000000 | off & 0x3FFFFFF if kind == "bl" else 0x54000001 | (off & 0x7FFFF) << 5
        words.append(w)
    return {CODE: words, at1: f1 + [RET], at2: f2 + [RET]}


def _compare_program(seed: int) -> None:
    rng = random.Random(seed)
    probe = Cpu()
    program = _program(rng, probe)
    x = [_register(rng) for _ in range(31)]
    x[28] = x[29] = x[30] = 0
    sp = DATA + rng.randrange(0, 0x1000, 16)
    budgets = [rng.randrange(1, 60) for _ in range(rng.randrange(1, 30))] + [100_000]
    threshold = rng.choice([1, 2, 3, 5, 200])
    traces = []
    for translate in (False, True):
        image = bytearray(RAM_SIZE)
        image[VBAR - RAM:VBAR - RAM + 0x800] = struct.pack("<I", HVC) * 0x200
        for address, words in program.items():
            image[address - RAM:address - RAM + 4 * len(words)] = struct.pack(f"<{len(words)}I", *words)
        phys = PhysicalMemory()
        phys.add_ram(RAM, image)
        cpu = Cpu(phys)
        s = cpu.state
        s.x[:31], s.sp, s.pc, s.sr[VBAR_EL1] = x, sp, CODE, VBAR
        cpu.tier1.enabled, cpu.tier1.threshold = translate, threshold
        traces.append(_trace(cpu, budgets))
    _assert_same(*traces, f"seed {seed}")


@pytest.mark.parametrize("seed", _seeds(200, 3000))
def test_programs_translated_equal_decoded(seed: int) -> None:
    _compare_program(seed)


@pytest.mark.parametrize("top", [31, 63])
def test_conditions_on_a_subtraction_match_its_flags(top: int) -> None:
    """The fused compare's conditions (translate._ON_SUBTRACTION) decide exactly as
    ConditionHolds on the NZCV that SUBS computes, for edge and random operands."""
    from armvisor.arch.pstate import CONDITION_TABLE
    from armvisor.cpu.translate import _ON_SUBTRACTION

    mask, sign = (1 << (top + 1)) - 1, 1 << top
    rng = random.Random(top)
    edges = [0, 1, 2, sign - 1, sign, sign + 1, mask - 1, mask]
    pairs = [(a, b) for a in edges for b in edges] + [(v, v) for v in edges]
    pairs += [(rng.getrandbits(top + 1), rng.getrandbits(top + 1)) for _ in range(2000)]
    for a, b in pairs:
        r = (a - b) & mask
        nzcv = r >> top << 3 | (0 if r else 4) | (2 if a >= b else 0) | ((a ^ b) & (a ^ r)) >> top
        for cond, text in _ON_SUBTRACTION.items():
            got = bool(eval(text.format(top=top, sign=sign), {}, {"a_": a, "b_": b, "r_": r}))
            assert got == CONDITION_TABLE[cond][nzcv], (cond, hex(a), hex(b))
