"""MRS/MSR/SYS semantics of registers and operations with behaviour beyond storage."""

from __future__ import annotations

import pytest

from armvisor.arch.sysregs import (
    CNTKCTL_EL1,
    CSSELR_EL1,
    MDSCR_EL1,
    OSLSR_EL1,
    PAR_EL1,
    SCTLR_EL1,
    SPSR_EL1,
    SYSREGS_BY_NAME,
)
from armvisor.cpu import HypTrap
from armvisor.cpu.stops import UnsupportedFeature
from unit.cpu.test_exceptions import DATA, LOWER_A64, RAM, VBAR, machine, run, syndrome


def test_sctlr_mmu_and_big_endian_refused_before_any_change() -> None:
    for value in (1, 1 << 25, 1 << 24):
        cpu = machine("nop\nmsr sctlr_el1, x1")
        cpu.state.x[1] = value
        before = cpu.state.sr[SCTLR_EL1]
        with pytest.raises(UnsupportedFeature, match="SCTLR_EL1"):
            cpu.run(2)
        assert cpu.state.sr[SCTLR_EL1] == before and cpu.state.pc == RAM + 4


def test_res0_write_masks() -> None:
    cpu = machine("msr sctlr_el1, x1\nmsr spsr_el1, x2\nmsr mdscr_el1, x3\nmsr vbar_el1, x4\n"
                  "mrs x5, sctlr_el1\nmrs x6, spsr_el1\nmrs x7, mdscr_el1")
    ones = (1 << 64) - 1
    cpu.state.x[1:5] = [ones & ~(1 | 1 << 24 | 1 << 25), ones, ones, ones]
    run(cpu, 7)
    s = cpu.state
    assert s.x[5] == 0x34DDDBBE  # ARMv8.0 SCTLR_EL1 fields and RES1 positions, M/E0E/EE clear
    assert s.x[6] == 0xF03003DF  # N Z C V SS IL D A I F M[4:0]; PAN (bit 22) is RES0 on the A57
    assert s.x[7] == 0x6CE0F041
    assert s.sr[SYSREGS_BY_NAME["VBAR_EL1"].enc] == ones & ~0x7FF


def test_pstate_views() -> None:
    cpu = machine("msr nzcv, x1\nmrs x2, nzcv\nmsr daif, x3\nmrs x4, daif\nmrs x5, currentel\n"
                  "mrs x6, spsel\nmsr spsel, xzr\nmrs x7, spsel")
    s = cpu.state
    s.x[1], s.x[3] = 0xFFFF_FFFF_FFFF_FFFF, 0x2C5
    s.set_sp_el(0, 0x300)
    run(cpu, 8)
    assert s.nzcv == 0xF and s.x[2] == 0xF000_0000
    assert s.daif == 0x2C0 and s.x[4] == 0x2C0
    assert s.x[5] == 0b0100 and s.x[6] == 1 and s.x[7] == 0 and s.sp == 0x300


def test_sp_el0_access() -> None:
    cpu = machine("msr sp_el0, x1\nmrs x2, sp_el0")
    cpu.state.x[1] = 0x1230
    run(cpu, 2)
    assert cpu.state.x[2] == 0x1230 and cpu.state.banked_sp[0] == 0x1230
    cpu = machine("mrs x2, sp_el0", spsel=0)  # SP_EL0 is the SP in use: UNDEFINED
    run(cpu, 1)
    assert syndrome(cpu) == (0, 0)


@pytest.mark.parametrize("code, el", [("mrs x0, currentel", 0), ("mrs x0, s3_4_c4_c1_0", 1),
                                      ("msr s3_4_c4_c1_0, x0", 1), ("msr midr_el1, x0", 1),
                                      ("mrs x0, oslar_el1", 1), ("msr tpidrro_el0, x0", 0),
                                      ("mrs x0, s3_0_c15_c0_0", 1), ("mrs x0, s3_0_c4_c2_3", 1),
                                      ("mrs x0, s3_0_c4_c2_4", 1), ("msr cntfrq_el0, x0", 1)])
def test_undefined_accesses(code: str, el: int) -> None:
    cpu = machine(code, el)
    run(cpu, 1)
    assert syndrome(cpu) == (0, 0)


def test_os_lock() -> None:
    cpu = machine("mrs x1, oslsr_el1\nmsr oslar_el1, xzr\nmrs x2, oslsr_el1\nmsr oslar_el1, x3\nmrs x4, oslsr_el1")
    cpu.state.x[3] = 1
    run(cpu, 5)
    assert cpu.state.x[1:5] == [0b1010, 0b1000, 1, 0b1010]
    assert cpu.state.sr[OSLSR_EL1] == 0b1010


def test_ccsidr_follows_csselr() -> None:
    cpu = machine("msr csselr_el1, x1\nmrs x2, ccsidr_el1\nmsr csselr_el1, x3\nmrs x4, ccsidr_el1\n"
                  "msr csselr_el1, x5\nmrs x6, ccsidr_el1\nmrs x7, clidr_el1")
    cpu.state.x[1], cpu.state.x[3], cpu.state.x[5] = 0, 1, 2
    run(cpu, 7)
    assert cpu.state.x[2] == 0x701FE00A and cpu.state.x[4] == 0x201FE012
    assert cpu.state.x[6] == 0x70FFE07A and cpu.state.x[7] == 0x0A200023
    assert cpu.state.sr[CSSELR_EL1] == 2


def test_dczid_prohibited_bit() -> None:
    cpu = machine("mrs x1, dczid_el0")
    run(cpu, 1)
    assert cpu.state.x[1] == 4
    cpu = machine("mrs x1, dczid_el0")
    cpu.state.hcr_el2 = 1 << 28
    run(cpu, 1)
    assert cpu.state.x[1] == 0x14
    cpu = machine("mrs x1, dczid_el0", el=0)
    cpu.state.sr[SCTLR_EL1] = 0
    run(cpu, 1)
    assert cpu.state.x[1] == 0x14


def test_counters_advance_and_timer_views() -> None:
    cpu = machine("mrs x1, cntvct_el0\nmrs x2, cntpct_el0\nmrs x3, cntfrq_el0\n"
                  "msr cntv_tval_el0, x10\nmrs x4, cntv_cval_el0\nmrs x5, cntv_tval_el0\n"
                  "msr cntv_ctl_el0, x11\nmrs x6, cntv_ctl_el0\nmsr cntv_cval_el0, xzr\nmrs x7, cntv_ctl_el0")
    cpu.state.x[10] = 0xFFFF_FFFF_0000_1000  # TVAL is a signed 32-bit value: +0x1000
    cpu.state.x[11] = 0xFF  # only ENABLE and IMASK are writable
    left = 10
    while left:  # each timer write ends the run (YieldToOwner), as the hypervisor must see it
        before = cpu.icount
        cpu.run(left)
        left -= cpu.icount - before
    x = cpu.state.x
    assert x[2] > x[1] and x[3] == 62_500_000
    assert 0 < x[4] - x[2] <= 0x1000 + 2
    assert 0x1000 - 4 < x[5] <= 0x1000
    assert x[6] == 3  # not yet fired
    assert x[7] == 3 | 4  # CVAL = 0: ISTATUS


def test_el0_counter_access_follows_cntkctl() -> None:
    cpu = machine("mrs x1, cntvct_el0", el=0)
    run(cpu, 1)
    assert cpu.state.pc == VBAR + LOWER_A64 and syndrome(cpu)[0] == 0x18
    cpu = machine("nop\nmrs x1, cntvct_el0\nmrs x2, cntfrq_el0", el=0)
    cpu.state.sr[CNTKCTL_EL1] = 2
    run(cpu, 3)
    assert cpu.state.x[1] > 0 and cpu.state.x[2] == 62_500_000


def test_el0_dcc_follows_mdscr_tdcc() -> None:
    cpu = machine("mrs x1, mdccsr_el0", el=0)
    run(cpu, 1)
    assert cpu.state.pc == RAM + 4
    cpu = machine("mrs x1, mdccsr_el0", el=0)
    cpu.state.sr[MDSCR_EL1] = 1 << 12
    run(cpu, 1)
    assert syndrome(cpu)[0] == 0x18


def test_pmu_registers() -> None:
    cpu = machine("mrs x1, pmcr_el0\nmsr pmcntenset_el0, x2\nmsr pmcntenclr_el0, x3\nmrs x4, pmcntenset_el0\n"
                  "msr pmselr_el0, x5\nmsr pmxevcntr_el0, x6\nmrs x7, pmevcntr2_el0\n"
                  "msr pmcr_el0, x8\nmrs x9, pmevcntr2_el0\nmrs x10, pmcr_el0")
    s = cpu.state
    s.x[2], s.x[3], s.x[5], s.x[6], s.x[8] = 0xFFFF_FFFF, 0b101, 2, 77, 0b11  # E | P
    run(cpu, 10)
    assert s.x[1] == 0x41013000
    assert s.x[4] == (1 << 31) | 0b111010  # 6 counters and the cycle counter, minus cleared
    assert s.x[7] == 77 and s.x[9] == 0 and s.x[10] == 0x41013001


def test_pmu_at_el0_needs_pmuserenr() -> None:
    cpu = machine("mrs x1, pmccntr_el0", el=0)
    run(cpu, 1)
    assert syndrome(cpu)[0] == 0x18
    cpu = machine("mrs x1, pmccntr_el0", el=0)
    cpu.state.sr[SYSREGS_BY_NAME["PMUSERENR_EL0"].enc] = 1
    run(cpu, 1)
    assert cpu.state.pc == RAM + 4


def test_claim_tags() -> None:
    cpu = machine("mrs x1, dbgclaimset_el1\nmsr dbgclaimset_el1, x2\nmsr dbgclaimclr_el1, x3\n"
                  "mrs x4, dbgclaimclr_el1")
    cpu.state.x[2], cpu.state.x[3] = 0x1F3, 0x3
    run(cpu, 4)
    assert cpu.state.x[1] == 0xFF and cpu.state.x[4] == 0xF0


# -- SYS operations ---------------------------------------------------------------------------------
def test_dc_zva_zeroes_the_aligned_block() -> None:
    cpu = machine("dc zva, x1")
    cpu.phys.write(DATA, bytes(range(1, 200)))
    cpu.state.x[1] = DATA + 0x47
    run(cpu, 1)
    data = cpu.phys.read(DATA, 200)
    assert data[:0x40] == bytes(range(1, 0x41)) and data[0x40:0x80] == bytes(0x40)
    assert data[0x80:199] == bytes(range(0x81, 200))


def test_dc_zva_outside_ram_is_a_stage2_abort() -> None:
    cpu = machine("dc zva, x1")
    cpu.state.x[1] = 0x900_0010
    stop = cpu.run(1)
    assert isinstance(stop, HypTrap) and stop.esr >> 26 == 0x24 and stop.elr == RAM
    assert stop.esr & (1 << 6) and not stop.esr & (1 << 24)  # WnR, no ISV


def test_dc_civac_outside_ram_reports_cache_maintenance() -> None:
    cpu = machine("dc civac, x1")
    cpu.state.x[1] = 0x900_0010
    stop = cpu.run(1)
    assert isinstance(stop, HypTrap) and stop.esr >> 26 == 0x24
    assert stop.esr & (1 << 8) and stop.esr & (1 << 6) and stop.far == 0x900_0010


def test_dc_civac_beyond_pa_size_is_an_address_size_fault_at_el1() -> None:
    cpu = machine("dc civac, x1")
    cpu.state.x[1] = 1 << 50
    run(cpu, 1)
    ec, iss = syndrome(cpu)
    assert ec == 0x25 and iss & 0x3F == 0 and iss & (1 << 8)


def test_at_writes_par() -> None:
    cpu = machine("at s1e1r, x1\nmrs x2, par_el1\nat s1e0w, x3\nmrs x4, par_el1")
    cpu.state.x[1], cpu.state.x[3] = DATA + 0x123, 1 << 50
    run(cpu, 4)
    assert cpu.state.x[2] == DATA | 0x800 | 0x200 | 0x100
    assert cpu.state.x[4] == 0x801
    assert cpu.state.sr[PAR_EL1] == 0x801


def test_ic_iallu_drops_decoded_instructions() -> None:
    cpu = machine("ic iallu\nnop")
    run(cpu, 1)
    assert RAM not in cpu.cache
    run(cpu, 1)
    assert cpu.state.pc == RAM + 8


def test_spsr_round_trip_through_exception() -> None:
    cpu = machine("svc #0")
    cpu.state.nzcv = 0b0101
    run(cpu, 1)
    assert cpu.state.sr[SPSR_EL1] == (0b0101 << 28) | 0b0101
