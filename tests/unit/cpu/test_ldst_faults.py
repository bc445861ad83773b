"""Loads and stores that fault, without Unicorn: stage-2 data aborts (MMIO) with the ESR_EL2
syndrome the Arm ARM gives (ISS encoding for an exception from a Data Abort), alignment and SP
alignment faults taken to EL1, UNDEFINED encodings, SIMD&FP routing, the exclusive monitor and
the signed atomic min/max that Unicorn gets wrong.

Expected values are written out from the Arm ARM field layout (ISV 24, SAS 23:22, SSE 21,
SRT 20:16, SF 15, AR 14, WnR 6, DFSC 5:0), not taken from armvisor.
"""

from __future__ import annotations

import struct

import pytest

from armvisor.arch.sysregs import CPACR_EL1, ELR_EL1, ESR_EL1, FAR_EL1, SCTLR_EL1, VBAR_EL1
from armvisor.cpu import Budget, Cpu, HypTrap, PhysicalMemory

RAM = 0x4000_0000
RAM_SIZE = 0x1_0000
DATA = RAM + 0x8000
VBAR = RAM + 0x4000
MMIO = 0x0900_0000  # no RAM: a stage-2 translation fault at level 1 (no RAM in its 1 GB)
LITERAL_MMIO = RAM + 0x8_0000  # no RAM, but in the RAM's 2 MB block: level 3
EC_DABT_LOW, EC_DABT_CUR, EC_SP_ALIGN, EC_UNKNOWN, EC_FP = 0x24, 0x25, 0x26, 0x00, 0x07
IL = 1 << 25


def iss(srt: int = 0, sas: int = 0, sse: int = 0, sf: int = 0, ar: int = 0, wnr: int = 0,
        dfsc: int = 0x05, isv: int = 1) -> int:
    """ISS of a data abort; ISV=0 clears the instruction-syndrome fields."""
    syndrome = isv << 24 | sas << 22 | sse << 21 | srt << 16 | sf << 15 | ar << 14 if isv else 0
    return syndrome | wnr << 6 | dfsc


def machine(word: int, **x: int) -> Cpu:
    """A PE at EL1h with ``word`` at RAM, X registers from ``x`` (x0=...), others distinct."""
    phys = PhysicalMemory()
    image = bytearray(RAM_SIZE)
    image[0:4] = struct.pack("<I", word)
    image[DATA - RAM:DATA - RAM + 0x100] = bytes(range(0x100))
    phys.add_ram(RAM, image)
    cpu = Cpu(phys)
    s = cpu.state
    s.x[:31] = [0x1111_0000 + i for i in range(31)]
    for name, v in x.items():
        s.x[int(name[1:])] = v
    s.sp = DATA + 0x800
    s.pc = RAM
    s.sr[VBAR_EL1] = VBAR
    return cpu


def snapshot(cpu: Cpu) -> tuple:
    s = cpu.state
    return list(s.x), s.sp, s.nzcv, s.pstate, bytes(cpu.phys.regions[0].data)


# (word, registers, expected ISS) -- single-register accesses without writeback: ISV=1.
ISV_VALID = {
    "ldrb w1, [x0]": (0x39400001, {}, iss(srt=1, sas=0)),
    "ldrsh w2, [x0]": (0x79C00002, {}, iss(srt=2, sas=1, sse=1)),
    "ldrsw x3, [x0]": (0xB9800003, {}, iss(srt=3, sas=2, sse=1, sf=1)),
    "ldrsb x11, [x0]": (0x3980000B, {}, iss(srt=11, sas=0, sse=1, sf=1)),
    "str x4, [x0]": (0xF9000004, {}, iss(srt=4, sas=3, sf=1, wnr=1)),
    "stlr w5, [x0]": (0x889FFC05, {}, iss(srt=5, sas=2, ar=1, wnr=1)),
    "ldar x6, [x0]": (0xC8DFFC06, {}, iss(srt=6, sas=3, sf=1, ar=1)),
    "ldr w7, [x0, x1, lsl #2]": (0xB8617807, {"x1": 0}, iss(srt=7, sas=2)),
    "str xzr, [x0]": (0xF900001F, {}, iss(srt=31, sas=3, sf=1, wnr=1)),
    "ldurh w8, [x0, #2]": (0x78402008, {"x0": MMIO - 2}, iss(srt=8, sas=1)),
    "ldtr x9, [x0]": (0xF8400809, {}, iss(srt=9, sas=3, sf=1)),
}

# Pairs, writeback, exclusives and atomics: ISV=0.
ISV_INVALID = {
    "ldp x1, x2, [x0]": (0xA9400801, {}, iss(isv=0)),
    "stp w1, w2, [x0]": (0x29000801, {}, iss(isv=0, wnr=1)),
    "ldr x1, [x0], #8": (0xF8408401, {}, iss(isv=0)),
    "ldr x1, [x0, #8]!": (0xF8408C01, {"x0": MMIO - 8}, iss(isv=0)),
    "ldxr x1, [x0]": (0xC85F7C01, {}, iss(isv=0)),
    "ldxp x1, x2, [x0]": (0xC87F0801, {}, iss(isv=0)),
    "ldadd x1, x2, [x0]": (0xF8210002, {}, iss(isv=0)),
    "swp x1, x2, [x0]": (0xF8218002, {}, iss(isv=0)),
    "cas x1, x2, [x0]": (0xC8A17C02, {}, iss(isv=0)),
    "casp x2, x3, x4, x5, [x0]": (0x48227C04, {}, iss(isv=0)),
}


def assert_stage2_abort(cpu: Cpu, expected_iss: int, address: int) -> None:
    before = snapshot(cpu)
    stop = cpu.run(1)
    assert isinstance(stop, HypTrap)
    assert stop.esr == EC_DABT_LOW << 26 | IL | expected_iss, f"{stop.esr:#x}"
    assert stop.far == address
    assert stop.hpfar == (address >> 12) << 4
    assert stop.elr == RAM and cpu.state.pc == RAM
    assert snapshot(cpu) == before  # precise: nothing changed


@pytest.mark.parametrize("name", [*ISV_VALID, *ISV_INVALID])
def test_stage2_abort(name: str) -> None:
    """An access to MMIO (no RAM at x0): EC 0x24 to EL2 with the form's syndrome."""
    word, regs, expected = {**ISV_VALID, **ISV_INVALID}[name]
    assert_stage2_abort(machine(word, **{"x0": MMIO, **regs}), expected, MMIO)


def test_literal_load_has_syndrome() -> None:
    """LDR (literal) is a single-register load without writeback: ISV=1 (level-3 fault)."""
    cpu = machine(0x5840000A)  # ldr x10, RAM + 0x80000
    assert_stage2_abort(cpu, iss(srt=10, sas=3, sf=1, dfsc=0x07), LITERAL_MMIO)


def test_store_exclusive_abort_has_no_syndrome() -> None:
    """STXR faults only when the monitor passes (else it makes no access); ISV=0, WnR=1."""
    cpu = machine(0xC8027C01, x0=MMIO)  # stxr w2, x1, [x0]
    cpu.state.exclusive = (MMIO, 8)
    assert_stage2_abort(cpu, iss(isv=0, wnr=1), MMIO)


def test_store_pair_second_element_faults_precisely() -> None:
    """STP whose second element is past the end of RAM: the abort names that element and the
    first one is not written."""
    end = RAM + RAM_SIZE
    cpu = machine(0xA9000801, x0=end - 8)  # stp x1, x2, [x0]
    assert_stage2_abort(cpu, iss(isv=0, wnr=1, dfsc=0x07), end)


def test_load_pair_second_element_faults_precisely() -> None:
    end = RAM + RAM_SIZE
    assert_stage2_abort(machine(0xA9400801, x0=end - 8), iss(isv=0, dfsc=0x07), end)


# (word, registers, address, WnR) -- misaligned accesses: alignment fault to EL1.
MISALIGNED = {
    "ldr x1, [x0]": (0xF9400001, {"x0": DATA + 4}, DATA + 4, 0),
    "str w1, [x0, #2]!": (0xB8002C01, {"x0": DATA}, DATA + 2, 1),
    "ldr x1, [x0], #8": (0xF8408401, {"x0": DATA + 1}, DATA + 1, 0),
    "ldar x6, [x0]": (0xC8DFFC06, {"x0": DATA + 2}, DATA + 2, 0),
    "ldaddh w1, w2, [x0]": (0x78210002, {"x0": DATA + 1}, DATA + 1, 0),
    "ldxp x1, x2, [x0]": (0xC87F0801, {"x0": DATA + 8}, DATA + 8, 0),
    "stxr w2, x1, [x0] (no monitor)": (0xC8027C01, {"x0": DATA + 4}, DATA + 4, 1),
    "casp x2, x3, x4, x5, [x0]": (0x48227C04, {"x0": DATA + 8}, DATA + 8, 0),
    "ldp x1, x2, [x0]": (0xA9400801, {"x0": DATA + 4}, DATA + 4, 0),
}


@pytest.mark.parametrize("name", MISALIGNED)
def test_alignment_fault(name: str) -> None:
    word, regs, address, wnr = MISALIGNED[name]
    cpu = machine(word, **regs)
    x_before = list(cpu.state.x)
    assert isinstance(cpu.run(1), Budget)
    s = cpu.state
    assert s.pc == VBAR + 0x200
    assert s.sr[ESR_EL1] == EC_DABT_CUR << 26 | IL | wnr << 6 | 0x21
    assert s.sr[FAR_EL1] == address and s.sr[ELR_EL1] == RAM
    assert s.x == x_before  # no load, no writeback


@pytest.mark.parametrize("el", [1, 0])
def test_sp_alignment_fault(el: int) -> None:
    """ldr x0, [sp] with SP misaligned: SP alignment fault (EC 0x26) while SCTLR_EL1.SA (SA0
    at EL0) is set, a plain load once it is cleared."""
    cpu = machine(0xF94003E0)
    s = cpu.state
    s.set_el_spsel(el, el)
    s.sp = DATA + 8
    assert isinstance(cpu.run(1), Budget)
    assert s.pc == VBAR + (0x200 if el else 0x400)
    assert s.sr[ESR_EL1] == EC_SP_ALIGN << 26 | IL and s.sr[ELR_EL1] == RAM
    assert s.x[0] == 0x1111_0000

    cpu = machine(0xF94003E0)
    s = cpu.state
    s.set_el_spsel(el, el)
    s.sp = DATA + 8
    s.sr[SCTLR_EL1] &= ~(0b11 << 3)
    assert isinstance(cpu.run(1), Budget)
    assert s.pc == RAM + 4 and s.x[0] == int.from_bytes(bytes(range(8, 16)), "little")


@pytest.mark.parametrize("word, fpen, ec", [
    (0x48217C04, 0b00, EC_UNKNOWN),  # casp with odd Rs
    (0x88DF7C01, 0b00, EC_UNKNOWN),  # ldlar w1, [x0] (FEAT_LOR)
    (0xB8BFC001, 0b00, EC_UNKNOWN),  # ldapr w1, [x0] (FEAT_LRCPC)
    (0x3DC00000, 0b00, EC_FP),  # ldr q0, [x0]: FP trapped by CPACR_EL1.FPEN
    (0x3DC00000, 0b11, EC_UNKNOWN),  # ... and not implemented when enabled
    (0xED400000, 0b00, EC_UNKNOWN),  # LDP (SIMD&FP) with opc=11: unallocated, not an FP trap
])
def test_exception_classes(word: int, fpen: int, ec: int) -> None:
    cpu = machine(word, x0=DATA)
    cpu.state.sr[CPACR_EL1] = fpen << 20
    assert isinstance(cpu.run(1), Budget)
    s = cpu.state
    assert s.pc == VBAR + 0x200 and s.sr[ELR_EL1] == RAM
    assert s.sr[ESR_EL1] >> 26 == ec


def test_exclusive_monitor() -> None:
    """LDXR marks (address, size); a STXR of another size fails, writes nothing and clears the
    monitor; LDXP marks the pair's total size."""
    cpu = machine(0xC85F7C01, x0=DATA + 8)  # ldxr x1, [x0]
    cpu.run(1)
    assert cpu.state.exclusive == (DATA + 8, 8)
    cpu.phys.write(RAM + 4, struct.pack("<I", 0x88037C01))  # stxr w3, w1, [x0] (32-bit)
    before = cpu.phys.read(DATA, 0x100)
    cpu.run(1)
    assert cpu.state.x[3] == 1 and cpu.state.exclusive is None
    assert cpu.phys.read(DATA, 0x100) == before

    cpu = machine(0xC87F0801, x0=DATA + 16)  # ldxp x1, x2, [x0]
    cpu.run(1)
    assert cpu.state.exclusive == (DATA + 16, 16)


@pytest.mark.parametrize("word, memory, rs, new_memory", [
    (0x38214002, 0x80, 0x01, 0x01),  # ldsmaxb: max(-128, 1) = 1
    (0x38214002, 0x01, 0xFF, 0x01),  # ldsmaxb: max(1, -1) = 1
    (0x78215002, 0x7FFF, 0x8000, 0x8000),  # ldsminh: min(32767, -32768)
    (0xB8214002, 0xFFFF_FFFF, 0xDEAD_BEEF_0000_0005, 0x5),  # ldsmax: max(-1, 5); Rs<31:0> only
    (0xB8215002, 0x0, 0xDEAD_0000_8000_0000, 0x8000_0000),  # ldsmin: min(0, INT32_MIN)
])
def test_signed_atomic_min_max(word: int, memory: int, rs: int, new_memory: int) -> None:
    """MemAtomicOp_SMAX/SMIN compare SInt of the datasize-bit values (Unicorn compares them
    unsigned); Wt gets the old value zero-extended."""
    size = 1 << (word >> 30)
    cpu = machine(word, x0=DATA, x1=rs)
    cpu.phys.write(DATA, memory.to_bytes(size, "little"))
    cpu.run(1)
    assert int.from_bytes(cpu.phys.read(DATA, size), "little") == new_memory
    assert cpu.state.x[2] == memory
