"""Exception entry and return (Arm ARM D1.10 AArch64.TakeException, D1.11 ExceptionReturn).

Expected values are written from the Arm ARM: vector offsets (Table D1-7), ESR_EL1 = EC:IL:ISS,
SPSR_EL1 = PSTATE before the exception, ELR_EL1 = the preferred return address.

:func:`machine` and :func:`asm` are shared with the other system-level test files.
"""

from __future__ import annotations

import struct

import pytest

from armvisor.arch.sysregs import ELR_EL1, ESR_EL1, FAR_EL1, SCTLR_EL1, SPSR_EL1, VBAR_EL1
from armvisor.cpu import Budget, Cpu, HypTrap, PhysicalMemory
from armvisor.cpu.sp_alignment import check_sp_alignment, sp_checked
from armvisor.cpu.state import CpuState
from armvisor.toolchain import assemble

RAM = 0x4000_0000
RAM_SIZE = 0x2_0000
VBAR = RAM + 0x1_0000
DATA = RAM + 0x8000

CURRENT_SP0, CURRENT_SPX, LOWER_A64 = 0x000, 0x200, 0x400
IL = 1 << 25


def asm(source: str) -> list[int]:
    """Instruction words of an assembly snippet."""
    code = assemble(source)
    return list(struct.unpack(f"<{len(code) // 4}I", code))


def machine(code: str | list[int], el: int = 1, spsel: int = 1) -> Cpu:
    """A CPU with RAM at RAM, ``code`` at RAM, vectors at VBAR, in EL``el`` with SPSel."""
    words = asm(code) if isinstance(code, str) else code
    phys = PhysicalMemory()
    phys.add_ram(RAM, RAM_SIZE)
    phys.write(RAM, b"".join(struct.pack("<I", w) for w in words))
    cpu = Cpu(phys)
    s = cpu.state
    s.sr[VBAR_EL1] = VBAR
    s.pc = RAM
    s.daif = 0
    s.set_el_spsel(el, 0 if el == 0 else spsel)
    return cpu


def run(cpu: Cpu, n: int) -> None:
    stop = cpu.run(n)
    assert isinstance(stop, Budget), stop


def syndrome(cpu: Cpu) -> tuple[int, int]:
    """(EC, ISS) of ESR_EL1, asserting IL=1."""
    value = cpu.state.sr[ESR_EL1]
    assert value & IL
    return value >> 26, value & 0x1FFFFFF


# -- entry ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("el, spsel, offset, mode", [
    (1, 1, CURRENT_SPX, 0b0101), (1, 0, CURRENT_SP0, 0b0100), (0, 0, LOWER_A64, 0b0000)])
def test_svc_entry(el: int, spsel: int, offset: int, mode: int) -> None:
    cpu = machine("nop\nsvc #0x1234", el, spsel)
    s = cpu.state
    s.nzcv = 0b1010
    s.daif = 0x100  # A masked only
    s.ss = 1  # SVC completes: SPSR.SS records 0
    s.exclusive = (DATA, 8)
    s.set_sp_el(0, 0x5550)
    s.set_sp_el(1, 0xAAA0)
    run(cpu, 2)
    assert s.pc == VBAR + offset
    assert syndrome(cpu) == (0x15, 0x1234)
    assert s.sr[ELR_EL1] == RAM + 8
    assert s.sr[SPSR_EL1] == (0b1010 << 28) | 0x100 | mode
    assert (s.el, s.spsel, s.daif, s.ss, s.exclusive) == (1, 1, 0x3C0, 0, None)
    assert s.sp == 0xAAA0 and s.get_sp_el(0) == 0x5550


def test_vbar_low_bits_ignored() -> None:
    cpu = machine("svc #0")
    cpu.state.sr[VBAR_EL1] = VBAR | 0x7FF
    run(cpu, 1)
    assert cpu.state.pc == VBAR + CURRENT_SPX


def test_undefined_brk_and_udf() -> None:
    cpu = machine("udf #7")
    run(cpu, 1)
    assert syndrome(cpu) == (0x00, 0) and cpu.state.sr[ELR_EL1] == RAM
    cpu = machine("nop\nbrk #0xbeef")
    run(cpu, 2)
    assert syndrome(cpu) == (0x3C, 0xBEEF) and cpu.state.sr[ELR_EL1] == RAM + 4


def test_pc_alignment_fault() -> None:
    cpu = machine("br x1")
    cpu.state.x[1] = RAM + 0x102
    run(cpu, 2)
    assert syndrome(cpu) == (0x22, 0)
    assert cpu.state.sr[FAR_EL1] == RAM + 0x102 and cpu.state.sr[ELR_EL1] == RAM + 0x102


# -- return --------------------------------------------------------------------------------------
def test_eret_to_el0_restores_pstate_and_sp() -> None:
    cpu = machine("eret")
    s = cpu.state
    s.sr[SPSR_EL1] = (0b0110 << 28) | 0x80 | 0b0000  # EL0t, I masked
    s.sr[ELR_EL1] = RAM + 0x100
    s.set_sp_el(0, 0x7770)
    s.exclusive = (DATA, 4)
    run(cpu, 1)
    assert (s.pc, s.el, s.spsel, s.nzcv, s.daif, s.il) == (RAM + 0x100, 0, 0, 0b0110, 0x80, 0)
    assert s.sp == 0x7770 and s.exclusive is None


def test_eret_to_el1t_uses_sp_el0() -> None:
    cpu = machine("eret")
    s = cpu.state
    s.sr[SPSR_EL1] = 0b0100
    s.sr[ELR_EL1] = RAM + 0x40
    s.set_sp_el(0, 0x1230)
    run(cpu, 1)
    assert (s.el, s.spsel, s.sp, s.pc) == (1, 0, 0x1230, RAM + 0x40)


def test_eret_at_el0_is_undefined() -> None:
    cpu = machine("eret", el=0)
    run(cpu, 1)
    assert syndrome(cpu) == (0, 0) and cpu.state.sr[SPSR_EL1] & 0xF == 0


@pytest.mark.parametrize("mode", [0b1001, 0b1000, 0b1101, 0b10000, 0b0001, 0b0110])
def test_illegal_exception_return(mode: int) -> None:
    """EL2/EL3 targets, AArch32, EL0 with SPSel=1, reserved M[1]: PSTATE.IL set, EL and SP
    unchanged, PC = ELR; the next instruction takes EC 0x0E with SPSR.IL=1."""
    cpu = machine("eret")
    s = cpu.state
    s.sr[SPSR_EL1] = (0b1001 << 28) | 0x40 | mode
    s.sr[ELR_EL1] = RAM + 0x200
    run(cpu, 1)
    assert s.pc == VBAR + CURRENT_SPX
    assert syndrome(cpu) == (0x0E, 0)
    assert s.sr[ELR_EL1] == RAM + 0x200
    assert s.sr[SPSR_EL1] == (0b1001 << 28) | (1 << 20) | 0x40 | 0b0101
    assert s.il == 0 and s.el == 1


def test_return_with_spsr_il_set_takes_illegal_state_at_el0() -> None:
    cpu = machine("eret")
    s = cpu.state
    s.sr[SPSR_EL1] = (1 << 20) | 0b0000
    s.sr[ELR_EL1] = RAM + 0x200
    run(cpu, 1)
    assert s.pc == VBAR + LOWER_A64 and syndrome(cpu) == (0x0E, 0)
    assert s.sr[SPSR_EL1] == (1 << 20)


def test_illegal_return_to_misaligned_pc_is_a_pc_alignment_fault() -> None:
    cpu = machine("eret")
    s = cpu.state
    s.sr[SPSR_EL1] = 0b1001
    s.sr[ELR_EL1] = RAM + 0x202
    run(cpu, 1)
    assert syndrome(cpu) == (0x22, 0) and s.sr[FAR_EL1] == RAM + 0x202


def test_illegal_return_to_unmapped_pc_is_an_instruction_abort() -> None:
    cpu = machine("eret")
    s = cpu.state
    s.sr[SPSR_EL1] = 0b1001
    s.sr[ELR_EL1] = 0x1000_0000
    stop = cpu.run(1)
    assert isinstance(stop, HypTrap) and stop.esr >> 26 == 0x20 and stop.elr == 0x1000_0000


# -- SP alignment --------------------------------------------------------------------------------
@pytest.mark.parametrize("el, sctlr_bit", [(1, 1 << 3), (0, 1 << 4)])
def test_sp_alignment_check(el: int, sctlr_bit: int) -> None:
    cpu = machine("nop", el=el)
    s = cpu.state
    s.sr[SCTLR_EL1] = sctlr_bit
    s.sp = DATA + 8

    def load(state: CpuState) -> int:
        state.x[0] = 1
        return RAM + 4

    load.dabt_iss = 7  # type: ignore[attr-defined]
    op = sp_checked(load, RAM)
    assert op.dabt_iss == 7  # type: ignore[attr-defined]
    assert op(s) == VBAR + (LOWER_A64 if el == 0 else CURRENT_SPX)
    assert syndrome(cpu) == (0x26, 0) and s.sr[ELR_EL1] == RAM and s.x[0] == 0
    s.set_el_spsel(el, el)
    s.sp = DATA  # aligned: no fault
    assert op(s) == RAM + 4 and s.x[0] == 1
    s.sp = DATA + 8
    s.sr[SCTLR_EL1] = (1 << 3 | 1 << 4) & ~sctlr_bit  # only the other EL's control
    assert check_sp_alignment(s, RAM) is None


def test_sp_alignment_of_a_real_load() -> None:
    """LDR X0, [SP] with SP misaligned and SCTLR_EL1.SA=1 (needs the load/store group)."""
    cpu = machine("ldr x0, [sp]")
    if cpu.decode(asm("ldr x0, [sp]")[0], RAM).__name__ == "undefined":
        pytest.skip("loads are not implemented yet")
    cpu.state.sp = DATA + 4
    cpu.state.sr[SCTLR_EL1] |= 1 << 3
    run(cpu, 1)
    assert syndrome(cpu) == (0x26, 0)
