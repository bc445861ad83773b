"""IRQ and FIQ exceptions of the PE (Arm ARM D1.10, D1.11; vector offsets Table D1-7): virtual
interrupt inputs (HCR_EL2.VI/VF with IMO/FMO) masked by PSTATE.I/F, taken before the next
instruction with ELR = that instruction, SPSR = PSTATE before, ESR untouched; WFI wakes on an
asserted input even while masked (D1.16.2); software step and interrupts (D2.12.6)."""

from __future__ import annotations

import pytest

from armvisor.arch.sysregs import ELR_EL1, ESR_EL1, MDSCR_EL1, OSLSR_EL1, SPSR_EL1
from armvisor.cpu import Budget, HypTrap, WaitForInterrupt
from armvisor.cpu.timer import InstructionClock
from unit.cpu.test_exceptions import CURRENT_SP0, CURRENT_SPX, LOWER_A64, RAM, VBAR, machine, run

IRQ, FIQ = 0x080, 0x100
PSTATE_I, PSTATE_F = 1 << 7, 1 << 6
SPSR_SS = 1 << 21
ESR_MARK = 0x1234  # ESR_EL1 must keep whatever it held


def armed(code: str, el: int = 1, spsel: int = 1, irq: bool = False, fiq: bool = False):
    cpu = machine(code, el, spsel)
    cpu.state.sr[ESR_EL1] = ESR_MARK
    cpu.state.virq, cpu.state.vfiq = irq, fiq
    return cpu


@pytest.mark.parametrize("el,spsel,quarter", [(1, 1, CURRENT_SPX), (1, 0, CURRENT_SP0), (0, 0, LOWER_A64)])
@pytest.mark.parametrize("line,offset", [("irq", IRQ), ("fiq", FIQ)])
def test_taken_before_the_next_instruction(el: int, spsel: int, quarter: int, line: str, offset: int) -> None:
    cpu = armed("mov x1, #1", el, spsel, **{line: True})
    before = cpu.state.pstate
    run(cpu, 1)
    s = cpu.state
    assert s.pc == VBAR + quarter + offset
    assert s.sr[ELR_EL1] == RAM and s.sr[SPSR_EL1] == before
    assert s.sr[ESR_EL1] == ESR_MARK and s.x[1] == 0
    assert s.daif == 0x3C0 and s.el == 1 and s.spsel == 1


def test_fiq_comes_before_irq() -> None:
    cpu = armed("nop", irq=True, fiq=True)
    run(cpu, 1)
    assert cpu.state.pc == VBAR + CURRENT_SPX + FIQ


@pytest.mark.parametrize("line,mask", [("irq", PSTATE_I), ("fiq", PSTATE_F)])
def test_masked_until_daifclr(line: str, mask: int) -> None:
    cpu = armed(f"mov x1, #1\nmsr daifclr, #{mask >> 6}\nmov x2, #2", **{line: True})
    cpu.state.daif = mask
    run(cpu, 3)
    s = cpu.state
    assert s.x[1] == 1 and s.x[2] == 0
    assert s.sr[ELR_EL1] == RAM + 8  # the instruction after the MSR
    assert s.sr[SPSR_EL1] & mask == 0
    assert s.pc == VBAR + CURRENT_SPX + (IRQ if line == "irq" else FIQ)  # the entry is the 3rd step


def test_msr_daif_register_unmasks() -> None:
    cpu = armed("msr daif, xzr\nmov x2, #2", irq=True)
    cpu.state.daif = PSTATE_I
    run(cpu, 2)
    assert cpu.state.sr[ELR_EL1] == RAM + 4 and cpu.state.x[2] == 0


def test_eret_to_unmasked_state_takes_it_at_the_return_address() -> None:
    cpu = armed("eret", irq=True)
    s = cpu.state
    s.daif = 0x3C0
    s.sr[SPSR_EL1] = 0x5  # EL1h, DAIF clear
    s.sr[ELR_EL1] = RAM + 0x100
    run(cpu, 1)
    assert s.pc == VBAR + CURRENT_SPX + IRQ
    assert s.sr[ELR_EL1] == RAM + 0x100 and s.sr[SPSR_EL1] == 0x5


def test_masked_lines_are_ignored() -> None:
    cpu = armed("mov x1, #1\nmov x2, #2", irq=True, fiq=True)
    cpu.state.daif = PSTATE_I | PSTATE_F
    run(cpu, 2)
    assert cpu.state.pc == RAM + 8 and cpu.state.x[2] == 2


def test_untrapped_wfi_waits_without_an_interrupt() -> None:
    cpu = armed("wfi\nnop")
    assert isinstance(cpu.run(2), WaitForInterrupt) and cpu.state.pc == RAM + 4


def test_untrapped_wfi_wakes_on_a_masked_pending_interrupt() -> None:
    cpu = armed("wfi\nmov x1, #1", irq=True)
    cpu.state.daif = PSTATE_I
    assert isinstance(cpu.run(2), Budget)
    assert cpu.state.pc == RAM + 8 and cpu.state.x[1] == 1


def test_trapped_wfi_stays_a_trap() -> None:
    cpu = armed("wfi", irq=True)
    cpu.state.daif = PSTATE_I
    cpu.state.hcr_el2 = 1 << 13  # TWI
    stop = cpu.run(1)
    assert isinstance(stop, HypTrap) and stop.esr >> 26 == 0x01 and stop.elr == RAM


def _stepping(cpu, ss: int) -> None:
    """Software step with MDCR_EL2.TDE (the hypervisor's debugger owns it)."""
    s = cpu.state
    s.sr[MDSCR_EL1] = 1
    s.sr[OSLSR_EL1] = 0b1000  # OS Lock released
    s.mdcr_el2 = 1 << 8
    s.ss = ss


@pytest.mark.parametrize("ss", [1, 0], ids=["active-not-pending", "active-pending"])
def test_interrupt_before_a_step_records_the_step_state(ss: int) -> None:
    """D2.12.6: an interrupt taken in active-not-pending gives SPSR.SS=1, in active-pending 0;
    the step exception then comes at the vector, before any handler instruction (ISV=0)."""
    cpu = armed("mov x1, #1", irq=True)
    _stepping(cpu, ss)
    stop = cpu.run(10)
    s = cpu.state
    assert s.sr[SPSR_EL1] & SPSR_SS == (SPSR_SS if ss else 0)
    assert isinstance(stop, HypTrap) and stop.esr >> 26 == 0x32 and not stop.esr & (1 << 24)
    assert stop.elr == VBAR + CURRENT_SPX + IRQ and s.x[1] == 0


@pytest.mark.parametrize("debug", [False, True], ids=["fast", "debug"])
def test_instruction_clock_counts_exactly_in_both_loops(debug: bool) -> None:
    cpu = machine("nop\nnop\nnop\nmrs x1, cntpct_el0\nnop\nmrs x2, cntvct_el0")
    assert isinstance(cpu.clock, InstructionClock)
    cpu.state.cntvoff_el2 = 2
    if debug:  # an enabled breakpoint elsewhere selects the debug loop
        cpu.state.sr[MDSCR_EL1] = 1 << 15
        cpu.state.sr[0x8005] = 1 | (0xF << 5) | (0b11 << 1)  # DBGBCR0_EL1: enabled, EL0/EL1
        cpu.state.sr[0x8004] = RAM + 0x1000  # DBGBVR0_EL1: never reached
    run(cpu, 6)
    assert cpu.state.x[1] == 3 and cpu.state.x[2] == 5 - 2
    run(cpu, 1)
    assert cpu.clock.ticks == 7
