"""The system-register table: consistency, and every entry accessible exactly as declared
through MRS/MSR executed by the CPU at EL1 and EL0."""

from __future__ import annotations

import pytest

from armvisor.arch import sysregs
from armvisor.arch.sysreg_encoding import sys_reg, sys_reg_fields
from armvisor.arch.sysregs import SYSREGS, SYSREGS_BY_NAME, SysRegDesc
from armvisor.cpu.sysreg_access import SPECIAL, WRITE_MASKS
from unit.cpu.test_exceptions import LOWER_A64, RAM, VBAR, machine, run, syndrome

DESCS = list(SYSREGS.values())
MASK64 = (1 << 64) - 1


def _mrs(enc: int, rt: int) -> int:
    op0, op1, crn, crm, op2 = sys_reg_fields(enc)
    return 0xD5300000 | (op0 - 2) << 19 | op1 << 16 | crn << 12 | crm << 8 | op2 << 5 | rt


def _msr(enc: int, rt: int) -> int:
    return _mrs(enc, rt) & ~(1 << 21)


def test_names_and_encodings_unique() -> None:
    assert len({d.name for d in DESCS}) == len(DESCS) == len(SYSREGS_BY_NAME)
    assert len({d.enc for d in DESCS}) == len(DESCS)
    assert all(SYSREGS[d.enc] is d and SYSREGS_BY_NAME[d.name] is d for d in DESCS)
    assert all(d.access in ("rw", "ro", "wo", "") and d.el0 in ("", "r", "rw") for d in DESCS)


def test_id_space_is_complete_and_trapped_by_tid3() -> None:
    for crm in range(1, 8):
        for op2 in range(8):
            d = SYSREGS[sys_reg(3, 0, 0, crm, op2)]
            assert d.access == "ro" and d.trap == "TID3" and d.el0 == ""


@pytest.mark.parametrize("name, value", [
    ("MIDR_EL1", 0x411FD070), ("CTR_EL0", 0x8444C004), ("CLIDR_EL1", 0x0A200023),
    ("DCZID_EL0", 4), ("ID_AA64PFR0_EL1", 0x1111), ("ID_AA64DFR0_EL1", 0x10305106),
    ("ID_AA64ISAR0_EL1", 0x210000), ("ID_AA64MMFR0_EL1", 0x1124), ("CNTFRQ_EL0", 62_500_000),
    ("PMCR_EL0", 0x41013000), ("SCTLR_EL1", 0x00C50838), ("OSLSR_EL1", 0b1010)])
def test_reset_values(name: str, value: int) -> None:
    assert SYSREGS_BY_NAME[name].reset == value


def test_debug_and_pmu_counts_match_the_id_registers() -> None:
    dfr0 = SYSREGS_BY_NAME["ID_AA64DFR0_EL1"].reset
    brps, wrps = ((dfr0 >> 12) & 0xF) + 1, ((dfr0 >> 20) & 0xF) + 1
    assert [f"DBGBCR{n}_EL1" in SYSREGS_BY_NAME for n in range(brps + 1)] == [True] * brps + [False]
    assert [f"DBGWVR{n}_EL1" in SYSREGS_BY_NAME for n in range(wrps + 1)] == [True] * wrps + [False]
    n = (SYSREGS_BY_NAME["PMCR_EL0"].reset >> 11) & 0x1F
    assert [f"PMEVTYPER{i}_EL0" in SYSREGS_BY_NAME for i in range(n + 1)] == [True] * n + [False]
    assert sysregs.NUM_BREAKPOINTS == brps and sysregs.NUM_WATCHPOINTS == wrps


def _assert_undefined(cpu, el: int) -> None:
    assert syndrome(cpu) == (0, 0)
    assert cpu.state.pc == VBAR + (LOWER_A64 if el == 0 else 0x200)


@pytest.mark.parametrize("desc", DESCS, ids=[d.name for d in DESCS])
def test_el1_access_as_declared(desc: SysRegDesc) -> None:
    cpu = machine([_mrs(desc.enc, 1), _msr(desc.enc, 2), _mrs(desc.enc, 3)])
    cpu.state.x[1] = cpu.state.x[3] = 0xDEAD
    pattern = 0x5A5A_5A5A_A5A5_A5A5 if desc.enc not in SPECIAL else desc.reset
    cpu.state.x[2] = pattern
    run(cpu, 1)
    if desc.access in ("rw", "ro"):
        assert cpu.state.pc == RAM + 4
        if desc.enc not in SPECIAL:
            assert cpu.state.x[1] == (VBAR if desc.name == "VBAR_EL1" else desc.reset)
    else:
        _assert_undefined(cpu, 1)
        return
    run(cpu, 1)
    if desc.access in ("rw", "wo"):
        assert cpu.state.pc == RAM + 8
    else:
        _assert_undefined(cpu, 1)
        return
    run(cpu, 1)
    if desc.access == "rw" and desc.enc not in SPECIAL:
        assert cpu.state.x[3] == pattern & WRITE_MASKS.get(desc.enc, MASK64)


EL0_ENABLES = {"SCTLR_EL1": (1 << 15) | (1 << 9) | 0x00C50838, "CNTKCTL_EL1": 0x3FF, "PMUSERENR_EL0": 1}


@pytest.mark.parametrize("desc", DESCS, ids=[d.name for d in DESCS])
@pytest.mark.parametrize("write", [False, True])
def test_el0_access_as_declared(desc: SysRegDesc, write: bool) -> None:
    cpu = machine([_msr(desc.enc, 2) if write else _mrs(desc.enc, 1)], el=0)
    for name, value in EL0_ENABLES.items():
        cpu.state.sr[SYSREGS_BY_NAME[name].enc] = value
    cpu.state.x[2] = desc.reset
    run(cpu, 1)
    if write:
        allowed = desc.el0 == "rw" and desc.access in ("rw", "wo")
    else:
        allowed = "r" in desc.el0 and desc.access in ("rw", "ro")
    if allowed:
        assert cpu.state.pc == RAM + 4 and cpu.state.el == 0
    else:
        _assert_undefined(cpu, 0)
