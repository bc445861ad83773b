"""MRS, MSR (register) and SYS semantics (Arm ARM C5.3; C6.2 MRS, MSR (register), SYS).

Every access is checked in the architecture's order (e.g. the pseudocode of AArch64.CheckSystemAccess
and each register's "Accessibility" text):

1. EL0 access the register does not allow: UNDEFINED;
2. EL0 access disabled by an EL1 control (SCTLR_EL1.UCT/UMA/DZE/UCI, CNTKCTL_EL1, PMUSERENR_EL0,
   MDSCR_EL1.TDCC): trapped to EL1 with EC 0x18;
3. conditions that make the access UNDEFINED at EL1 (SP_EL0 while it is the SP in use);
4. EL2 traps (HCR_EL2 TID1/TID2/TID3/TACR/TVM/TRVM/TSW/TPC/TPU/TTLB/TDZ, MDCR_EL2 TDA/TDOSA/
   TDRA/TPM/TPMCR, with MDCR_EL2.TDE forcing the debug ones): EC 0x18 to EL2, PC at the
   instruction.

An encoding with no entry, MSR to a read-only register and MRS of a write-only one are
UNDEFINED whatever the EL. Registers with no special behaviour are plain storage in
``CpuState.sr`` (keyed by :func:`~armvisor.arch.sysreg_encoding.sys_reg`), written through their
RES0 mask; :data:`SPECIAL` holds the others as ``read(cpu, s)`` / ``write(cpu, s, value)``.

The counters (CNTPCT_EL0/CNTVCT_EL0) and the EL1 timers follow :mod:`armvisor.cpu.timer`:
the count comes from ``cpu.clock`` (host time or instruction count), CNTVOFF_EL2 is the
owner's ``CpuState.cntvoff_el2``. Writes to a timer's CTL/CVAL/TVAL end the run
(:class:`~armvisor.cpu.stops.YieldToOwner`) so that the owner re-evaluates the timer outputs at
once; MSR DAIF raises :class:`~armvisor.cpu.stops.InterruptWindow` when it may have unmasked an
asserted interrupt. The GICv3 CPU interface registers (ICC_*) are the owner's: trapped by its
ICH_HCR_EL2 bits, plain storage otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING

from armvisor.arch.esr import (
    ESR_ELx_EC_SYS64,
    ESR_ELx_FSC_ADDRSZ,
    ESR_ELx_FSC_FAULT,
    esr,
    sys64_iss,
)
from armvisor.arch.pstate import (
    PSR_DAIF_MASK,
    PSR_IL_BIT,
    PSR_MODE32_BIT,
    PSR_NZCV_MASK,
    PSR_SS_BIT,
)
from armvisor.arch.sysreg_encoding import sys_reg, sys_reg_fields
from armvisor.arch.sysregs import (
    CCSIDR_EL1,
    CCSIDR_VALUES,
    CNTFRQ_EL0,
    CNTKCTL_EL1,
    CNTP_CTL_EL0,
    CNTP_CVAL_EL0,
    CNTP_TVAL_EL0,
    CNTPCT_EL0,
    CNTV_CTL_EL0,
    CNTV_CVAL_EL0,
    CNTV_TVAL_EL0,
    CNTVCT_EL0,
    CONTEXTIDR_EL1,
    CPACR_EL1,
    CSSELR_EL1,
    CTR_EL0,
    CURRENTEL,
    DAIF,
    DBGCLAIMCLR_EL1,
    DBGCLAIMSET_EL1,
    DCZID_EL0,
    HCR_TACR,
    HCR_TDZ,
    HCR_TID1,
    HCR_TID2,
    HCR_TID3,
    HCR_TPC,
    HCR_TPU,
    HCR_TRVM,
    HCR_TSW,
    HCR_TTLB,
    HCR_TVM,
    ICH_HCR_EL2_TALL0,
    ICH_HCR_EL2_TALL1,
    ICH_HCR_EL2_TC,
    MDCR_EL2_TDA,
    MDCR_EL2_TDE,
    MDCR_EL2_TDOSA,
    MDCR_EL2_TDRA,
    MDCR_EL2_TPM,
    MDCR_EL2_TPMCR,
    MDSCR_EL1,
    NZCV,
    OSDLR_EL1,
    OSLAR_EL1,
    OSLSR_EL1,
    OSLSR_EL1_OSLK,
    PAR_EL1,
    PMCCFILTR_EL0,
    PMCCNTR_EL0,
    PMCNTENCLR_EL0,
    PMCNTENSET_EL0,
    PMCR_EL0,
    PMEVCNTR,
    PMEVTYPER,
    PMINTENCLR_EL1,
    PMINTENSET_EL1,
    PMOVSCLR_EL0,
    PMOVSSET_EL0,
    PMSELR_EL0,
    PMUSERENR_EL0,
    PMXEVCNTR_EL0,
    PMXEVTYPER_EL0,
    SCTLR_EL1,
    SCTLR_EL1_DZE,
    SCTLR_EL1_E0E,
    SCTLR_EL1_EE,
    SCTLR_EL1_M,
    SCTLR_EL1_UCI,
    SCTLR_EL1_UCT,
    SCTLR_EL1_UMA,
    SP_EL0,
    SPSEL,
    SPSR_EL1,
    SYSREGS,
    SYSREGS_BY_NAME,
    VBAR_EL1,
    SysRegDesc,
)
from armvisor.cpu.access import PA_BITS, stage2_fault_level
from armvisor.cpu.debug import DBGBCR, DBGBVR, DBGWCR, DBGWVR, NUM_BRPS, NUM_CTX_CMPS
from armvisor.cpu.decoder import Op, sign_extend
from armvisor.cpu.exceptions import pending_interrupt, take_exception
from armvisor.cpu.memory import PAGE_SHIFT
from armvisor.cpu.state import MASK32, MASK64, ZR_WRITE, CpuState
from armvisor.cpu.stops import (
    DataAbort,
    InterruptWindow,
    ReselectLoop,
    TrapToEL2,
    UnsupportedFeature,
    YieldToOwner,
)
from armvisor.cpu.timer import (
    CNT_CTL_ENABLE,
    CNT_CTL_ISTATUS,
    PHYSICAL_TIMER,
    VIRTUAL_TIMER,
    TimerRegs,
    condition_met,
    timer_count,
)

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu

Guard = Callable[[CpuState], "int | None"]
ReadFn = Callable[["Cpu", CpuState], int]
WriteFn = Callable[["Cpu", CpuState, int], None]


@dataclass(frozen=True)
class Special:
    """Behaviour of a register that is not plain storage. ``undefined_if`` makes an EL1
    access UNDEFINED while it holds."""

    read: ReadFn | None = None
    write: WriteFn | None = None
    undefined_if: Callable[[CpuState], bool] | None = None


@dataclass(frozen=True)
class SysOp:
    """A SYS instruction (Arm ARM C5.3, op0=0b01): cache/TLB maintenance, address translation.
    ``el0`` says whether EL0 may execute it (subject to :data:`EL0_ENABLES`)."""

    name: str
    enc: int
    action: WriteFn
    el0: bool = False
    trap: str = ""


# -- EL1 controls of EL0 access (trap to EL1, EC 0x18) --------------------------------------------
# enc -> (control register, bits, trap when the bits are set rather than clear)
CNTKCTL_EL0PCTEN, CNTKCTL_EL0VCTEN, CNTKCTL_EL0VTEN, CNTKCTL_EL0PTEN = 1, 2, 1 << 8, 1 << 9
MDSCR_EL1_TDCC = 1 << 12
PMUSERENR_EN = 1

DC_ZVA = sys_reg(1, 3, 7, 4, 1)
_UCI_OPS = [sys_reg(1, 3, 7, 5, 1), sys_reg(1, 3, 7, 10, 1), sys_reg(1, 3, 7, 11, 1), sys_reg(1, 3, 7, 14, 1)]

EL0_ENABLES: dict[int, tuple[int, int, bool]] = {
    CTR_EL0: (SCTLR_EL1, SCTLR_EL1_UCT, False),
    DAIF: (SCTLR_EL1, SCTLR_EL1_UMA, False),
    DC_ZVA: (SCTLR_EL1, SCTLR_EL1_DZE, False),
    **{enc: (SCTLR_EL1, SCTLR_EL1_UCI, False) for enc in _UCI_OPS},
    CNTFRQ_EL0: (CNTKCTL_EL1, CNTKCTL_EL0PCTEN | CNTKCTL_EL0VCTEN, False),
    CNTPCT_EL0: (CNTKCTL_EL1, CNTKCTL_EL0PCTEN, False),
    CNTVCT_EL0: (CNTKCTL_EL1, CNTKCTL_EL0VCTEN, False),
    **{enc: (CNTKCTL_EL1, CNTKCTL_EL0PTEN, False) for enc in (CNTP_TVAL_EL0, CNTP_CTL_EL0, CNTP_CVAL_EL0)},
    **{enc: (CNTKCTL_EL1, CNTKCTL_EL0VTEN, False) for enc in (CNTV_TVAL_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0)},
    # PMUSERENR_EL0.EN enables EL0 access to the PMU (its ER/CR/SW refinements are not modelled).
    **{d.enc: (PMUSERENR_EL0, PMUSERENR_EN, False) for d in SYSREGS.values()
       if d.trap in ("TPM", "TPMCR") and d.el0 and d.enc != PMUSERENR_EL0},
    **{d.enc: (MDSCR_EL1, MDSCR_EL1_TDCC, True) for d in SYSREGS.values() if d.trap == "TDA" and d.el0},
}

# -- EL2 trap groups: name -> (CpuState field, bits trapping reads, bits trapping writes) ---------
TRAP_GROUPS: dict[str, tuple[str, int, int]] = {
    "TID1": ("hcr_el2", HCR_TID1, HCR_TID1),
    "TID2": ("hcr_el2", HCR_TID2, HCR_TID2),
    "TID3": ("hcr_el2", HCR_TID3, HCR_TID3),
    "TACR": ("hcr_el2", HCR_TACR, HCR_TACR),
    "TVM": ("hcr_el2", HCR_TRVM, HCR_TVM),
    "TSW": ("hcr_el2", 0, HCR_TSW),
    "TPC": ("hcr_el2", 0, HCR_TPC),  # TPCP in later Arm ARM editions
    "TPU": ("hcr_el2", 0, HCR_TPU),
    "TTLB": ("hcr_el2", 0, HCR_TTLB),
    "TDZ": ("hcr_el2", 0, HCR_TDZ),
    # MDCR_EL2.TDE makes TDA, TDOSA and TDRA behave as 1.
    "TDA": ("mdcr_el2", MDCR_EL2_TDA | MDCR_EL2_TDE, MDCR_EL2_TDA | MDCR_EL2_TDE),
    "TDOSA": ("mdcr_el2", MDCR_EL2_TDOSA | MDCR_EL2_TDE, MDCR_EL2_TDOSA | MDCR_EL2_TDE),
    "TDRA": ("mdcr_el2", MDCR_EL2_TDRA | MDCR_EL2_TDE, MDCR_EL2_TDRA | MDCR_EL2_TDE),
    "TPM": ("mdcr_el2", MDCR_EL2_TPM, MDCR_EL2_TPM),
    "TPMCR": ("mdcr_el2", MDCR_EL2_TPM | MDCR_EL2_TPMCR, MDCR_EL2_TPM | MDCR_EL2_TPMCR),
    "ICH_TC": ("ich_hcr_el2", ICH_HCR_EL2_TC, ICH_HCR_EL2_TC),
    "ICH_TALL0": ("ich_hcr_el2", ICH_HCR_EL2_TALL0, ICH_HCR_EL2_TALL0),
    "ICH_TALL1": ("ich_hcr_el2", ICH_HCR_EL2_TALL1, ICH_HCR_EL2_TALL1),
}

# Writes to these change what the executor's debug checks must look at.
_DEBUG_GROUPS = ("TDA", "TDOSA")

# -- write masks of plain registers: enc -> bits that hold what is written (RES0 cleared) -------
_SCTLR_EL1_WRITABLE = 0x37DDDBBF  # ARMv8.0 fields and RES1 positions (11, 20, 22, 23, 28, 29)
_SPSR_WRITABLE = PSR_NZCV_MASK | PSR_SS_BIT | PSR_IL_BIT | PSR_DAIF_MASK | PSR_MODE32_BIT | 0xF
_MDSCR_EL1_WRITABLE = 0x6CE0F041  # SS ERR TDCC KDE HDE MDE TDA INTdis TXU RXO TXfull RXfull
_PMCR_EL0_WRITABLE = 0x79  # E D X DP LC; P and C are actions, N/IDCODE/IMP read-only
PMCR_EL0_P, PMCR_EL0_C = 1 << 1, 1 << 2
_PMU_COUNTER_BITS = (1 << 31) | ((1 << len(PMEVCNTR)) - 1)

WRITE_MASKS: dict[int, int] = {
    SPSR_EL1: _SPSR_WRITABLE,
    MDSCR_EL1: _MDSCR_EL1_WRITABLE,
    VBAR_EL1: MASK64 & ~0x7FF,
    CPACR_EL1: 0x10300000,  # TTA, FPEN
    CNTKCTL_EL1: 0x3FF,
    CSSELR_EL1: 0xF,
    OSDLR_EL1: 1,
    SYSREGS_BY_NAME["DBGPRCR_EL1"].enc: 1,
    CONTEXTIDR_EL1: MASK32,
    PMSELR_EL0: 0x1F,
    PMUSERENR_EL0: 0xF,
    **{enc: 0x00FFE1E7 for enc in DBGBCR},  # DBGBCR: BT LBN SSC HMC BAS PMC E
    **{enc: 0x1F1FFFFF for enc in DBGWCR},  # DBGWCR: MASK WT LBN SSC ... E
    **{enc: MASK64 & ~3 for enc in DBGWVR},  # DBGWVR: address, [1:0] RES0
    # DBGBVR: an address ([1:0] RES0), except that the context-aware breakpoints (the highest
    # CTX_CMPs+1) hold a Context ID in [31:0] for Context-ID types.
    **{enc: MASK64 if n >= NUM_BRPS - NUM_CTX_CMPS else MASK64 & ~3 for n, enc in enumerate(DBGBVR)},
}


# -- special registers -------------------------------------------------------------------------
def physical_counter(cpu: "Cpu", s: CpuState) -> int:
    """CNTPCT_EL0."""
    return cpu.physical_count()


def virtual_counter(cpu: "Cpu", s: CpuState) -> int:
    """CNTVCT_EL0 = CNTPCT_EL0 - CNTVOFF_EL2."""
    return timer_count(s, VIRTUAL_TIMER, cpu.physical_count())


def _write_daif(cpu: "Cpu", s: CpuState, value: int) -> None:
    s.daif = value & PSR_DAIF_MASK
    if pending_interrupt(s) is not None:
        raise InterruptWindow()


def _write_sctlr(cpu: "Cpu", s: CpuState, value: int) -> None:
    """SCTLR_EL1: stage-1 translation and big-endian data are not implemented (the write is
    refused before anything changes)."""
    if value & SCTLR_EL1_M:
        raise UnsupportedFeature(f"MSR SCTLR_EL1, 0x{value:x}: SCTLR_EL1.M=1 (stage-1 MMU) is not implemented")
    if value & (SCTLR_EL1_EE | SCTLR_EL1_E0E):
        raise UnsupportedFeature(f"MSR SCTLR_EL1, 0x{value:x}: big-endian data (EE/E0E=1) is not implemented")
    s.sr[SCTLR_EL1] = value & _SCTLR_EL1_WRITABLE


def _write_oslar(cpu: "Cpu", s: CpuState, value: int) -> None:
    """OSLAR_EL1.OSLK sets or clears the OS Lock, seen in OSLSR_EL1.OSLK."""
    sr = s.sr
    sr[OSLSR_EL1] = (sr[OSLSR_EL1] & ~OSLSR_EL1_OSLK) | ((value & 1) << 1)


def _read_ccsidr(cpu: "Cpu", s: CpuState) -> int:
    """CCSIDR_EL1 of the cache CSSELR_EL1 selects (UNKNOWN, here 0, for no cache)."""
    return CCSIDR_VALUES.get(s.sr[CSSELR_EL1], 0)


def _read_dczid(cpu: "Cpu", s: CpuState) -> int:
    """DCZID_EL0: BS=4 (64 bytes); DZP when DC ZVA is prohibited (HCR_EL2.TDZ, or at EL0
    SCTLR_EL1.DZE=0)."""
    prohibited = s.hcr_el2 & HCR_TDZ or (not s.el and not s.sr[SCTLR_EL1] & SCTLR_EL1_DZE)
    return s.sr[DCZID_EL0] | (0x10 if prohibited else 0)


def _timer(timer: TimerRegs) -> tuple[Special, Special, Special]:
    """CNTx_CTL_EL0 (ISTATUS computed), CNTx_CVAL_EL0 and CNTx_TVAL_EL0 (a signed 32-bit view
    of CVAL - counter) of one EL1 timer (Arm ARM D11.2.4); writes end the run."""
    ctl, cval = timer.ctl, timer.cval
    count = virtual_counter if timer.virtual else physical_counter

    def read_ctl(cpu: "Cpu", s: CpuState) -> int:
        value = s.sr[ctl]
        if value & CNT_CTL_ENABLE and condition_met(s, timer, cpu.physical_count()):
            value |= CNT_CTL_ISTATUS
        return value

    def write_ctl(cpu: "Cpu", s: CpuState, value: int) -> None:
        s.sr[ctl] = value & 3
        raise YieldToOwner()

    def write_cval(cpu: "Cpu", s: CpuState, value: int) -> None:
        s.sr[cval] = value
        raise YieldToOwner()

    def read_tval(cpu: "Cpu", s: CpuState) -> int:
        return (s.sr[cval] - count(cpu, s)) & MASK32

    def write_tval(cpu: "Cpu", s: CpuState, value: int) -> None:
        s.sr[cval] = (count(cpu, s) + sign_extend(value & MASK32, 32)) & MASK64
        raise YieldToOwner()

    return Special(read_ctl, write_ctl), Special(write=write_cval), Special(read_tval, write_tval)


def _set_clear(storage: int, mask: int) -> tuple[Special, Special]:
    """A SET/CLR register pair over one value (writes of 1 set or clear bits)."""

    def write_set(cpu: "Cpu", s: CpuState, value: int) -> None:
        s.sr[storage] |= value & mask

    def write_clear(cpu: "Cpu", s: CpuState, value: int) -> None:
        s.sr[storage] &= ~value

    def read(cpu: "Cpu", s: CpuState) -> int:
        return s.sr[storage]

    return Special(read, write_set), Special(read, write_clear)


def _write_pmcr(cpu: "Cpu", s: CpuState, value: int) -> None:
    """PMCR_EL0: P resets the event counters, C the cycle counter."""
    sr = s.sr
    if value & PMCR_EL0_P:
        for enc in PMEVCNTR:
            sr[enc] = 0
    if value & PMCR_EL0_C:
        sr[PMCCNTR_EL0] = 0
    sr[PMCR_EL0] = (sr[PMCR_EL0] & ~_PMCR_EL0_WRITABLE) | (value & _PMCR_EL0_WRITABLE)


def _pmu_selected(table: list[int], cycle: int | None) -> Special:
    """PMXEVTYPER_EL0 / PMXEVCNTR_EL0: the register PMSELR_EL0.SEL selects (31: the cycle
    counter's, where one exists); other values are RAZ/WI (CONSTRAINED UNPREDICTABLE)."""
    chosen = dict(enumerate(table))
    if cycle is not None:
        chosen[31] = cycle

    def read(cpu: "Cpu", s: CpuState) -> int:
        enc = chosen.get(s.sr[PMSELR_EL0])
        return 0 if enc is None else s.sr[enc]

    def write(cpu: "Cpu", s: CpuState, value: int) -> None:
        enc = chosen.get(s.sr[PMSELR_EL0])
        if enc is not None:
            s.sr[enc] = value

    return Special(read, write)


def _sp_el0_in_use(s: CpuState) -> bool:
    return not s.spsel


def _ignore(cpu: "Cpu", s: CpuState, value: int) -> None:
    """A write with no effect on this model."""


_CNTP_CTL, _CNTP_CVAL, _CNTP_TVAL = _timer(PHYSICAL_TIMER)
_CNTV_CTL, _CNTV_CVAL, _CNTV_TVAL = _timer(VIRTUAL_TIMER)
_PMCNTENSET, _PMCNTENCLR = _set_clear(PMCNTENSET_EL0, _PMU_COUNTER_BITS)
_PMINTENSET, _PMINTENCLR = _set_clear(PMINTENSET_EL1, _PMU_COUNTER_BITS)
_PMOVSSET, _PMOVSCLR = _set_clear(PMOVSSET_EL0, _PMU_COUNTER_BITS)
# The claim tags live in DBGCLAIMCLR_EL1 (which reads them); DBGCLAIMSET_EL1 reads its reset
# value, the implemented tags (0xFF).
_CLAIMSET, _CLAIMCLR = _set_clear(DBGCLAIMCLR_EL1, 0xFF)

SPECIAL: dict[int, Special] = {
    NZCV: Special(lambda cpu, s: s.nzcv << 28, lambda cpu, s, v: setattr(s, "nzcv", (v >> 28) & 0xF)),
    DAIF: Special(lambda cpu, s: s.daif, _write_daif),
    CURRENTEL: Special(lambda cpu, s: s.el << 2),
    SPSEL: Special(lambda cpu, s: s.spsel, lambda cpu, s, v: s.set_el_spsel(s.el, v & 1)),
    SP_EL0: Special(lambda cpu, s: s.get_sp_el(0), lambda cpu, s, v: s.set_sp_el(0, v),
                    undefined_if=_sp_el0_in_use),
    SCTLR_EL1: Special(write=_write_sctlr),
    OSLAR_EL1: Special(write=_write_oslar),
    CCSIDR_EL1: Special(read=_read_ccsidr),
    DCZID_EL0: Special(read=_read_dczid),
    CNTPCT_EL0: Special(read=physical_counter),
    CNTVCT_EL0: Special(read=virtual_counter),
    CNTP_CTL_EL0: _CNTP_CTL,
    CNTP_CVAL_EL0: _CNTP_CVAL,
    CNTP_TVAL_EL0: _CNTP_TVAL,
    CNTV_CTL_EL0: _CNTV_CTL,
    CNTV_CVAL_EL0: _CNTV_CVAL,
    CNTV_TVAL_EL0: _CNTV_TVAL,
    PMCR_EL0: Special(write=_write_pmcr),
    PMCNTENSET_EL0: _PMCNTENSET,
    PMCNTENCLR_EL0: _PMCNTENCLR,
    PMINTENSET_EL1: _PMINTENSET,
    PMINTENCLR_EL1: _PMINTENCLR,
    PMOVSSET_EL0: _PMOVSSET,
    PMOVSCLR_EL0: _PMOVSCLR,
    SYSREGS_BY_NAME["PMSWINC_EL0"].enc: Special(write=_ignore),
    PMXEVTYPER_EL0: _pmu_selected(PMEVTYPER, PMCCFILTR_EL0),
    PMXEVCNTR_EL0: _pmu_selected(PMEVCNTR, None),
    DBGCLAIMSET_EL1: Special(write=_CLAIMSET.write),
    DBGCLAIMCLR_EL1: _CLAIMCLR,
}


# -- SYS operations -------------------------------------------------------------------------------
def _check_maintenance_address(cpu: "Cpu", s: CpuState, va: int) -> None:
    """The address of a cache maintenance by VA must translate (MMU off: PA size and stage 2);
    its Data Abort has CM=1 and WnR=1 (Arm ARM D17.2.37, ISS of a Data Abort)."""
    if va >> PA_BITS:
        raise DataAbort(va, True, ESR_ELx_FSC_ADDRSZ, stage=1, cm=True)
    if cpu.phys.find(va) is None:
        raise DataAbort(va, True, ESR_ELx_FSC_FAULT + stage2_fault_level(cpu.phys, va),
                        stage=2, ipa=va, cm=True)


def _dc_zva(cpu: "Cpu", s: CpuState, va: int) -> None:
    """DC ZVA: zero the 64-byte block (DCZID_EL0.BS=4) holding ``va``, faulting as a store."""
    block = va & ~63 & MASK64
    access = cpu.access
    access.check_access(block, 8, True)
    write = access.write[8]
    for address in range(block, block + 64, 8):
        write(address, 0)


def _ic_ivau(cpu: "Cpu", s: CpuState, va: int) -> None:
    """IC IVAU: every PE drops the decoded instructions of the page holding ``va`` (it
    applies to the Inner Shareable domain)."""
    _check_maintenance_address(cpu, s, va)
    cpu.phys.code_written(va >> PAGE_SHIFT)


def _ic_iallu(cpu: "Cpu", s: CpuState, value: int) -> None:
    """IC IALLUIS / IC IALLU: drop every decoded instruction -- of every PE, which IALLU
    (this PE only) permits too, as caches may be invalidated at any time."""
    for page in list(cpu.phys.code_pages):
        cpu.phys.code_written(page)
    cpu.flush_decoded()


# PAR_EL1 (Arm ARM D19.2.95): bit 11 RES1; NS (bit 9); SH (8:7) 0b10 and ATTR 0x00 (Device-nGnRnE)
# for the flat MMU-off mapping; F (bit 0) with FST (6:1) for a fault.
_PAR_RES1 = 1 << 11
_PAR_NS = 1 << 9
_PAR_SH_OUTER = 0b10 << 7
_PAR_PA_MASK = ((1 << 48) - 1) & ~0xFFF


def _at(cpu: "Cpu", s: CpuState, va: int) -> None:
    """AT S1E1R/W, S1E0R/W with stage 1 off: the identity translation, or an address size
    fault for an address beyond the PA size."""
    if va >> PA_BITS:
        s.sr[PAR_EL1] = _PAR_RES1 | (ESR_ELx_FSC_ADDRSZ << 1) | 1
    else:
        s.sr[PAR_EL1] = (va & _PAR_PA_MASK) | _PAR_RES1 | _PAR_NS | _PAR_SH_OUTER


def _op(name: str, op1: int, crn: int, crm: int, op2: int, action: WriteFn, el0: bool = False,
        trap: str = "") -> SysOp:
    return SysOp(name, sys_reg(1, op1, crn, crm, op2), action, el0, trap)


_TLBI_OPS = {0: "VMALLE1", 1: "VAE1", 2: "ASIDE1", 3: "VAAE1", 5: "VALE1", 7: "VAALE1"}

SYSOPS: dict[int, SysOp] = {op.enc: op for op in (
    _op("IC IALLUIS", 0, 7, 1, 0, _ic_iallu, trap="TPU"),
    _op("IC IALLU", 0, 7, 5, 0, _ic_iallu, trap="TPU"),
    _op("IC IVAU", 3, 7, 5, 1, _ic_ivau, el0=True, trap="TPU"),
    _op("DC IVAC", 0, 7, 6, 1, _check_maintenance_address, trap="TPC"),
    _op("DC ISW", 0, 7, 6, 2, _ignore, trap="TSW"),
    _op("DC CSW", 0, 7, 10, 2, _ignore, trap="TSW"),
    _op("DC CISW", 0, 7, 14, 2, _ignore, trap="TSW"),
    _op("DC ZVA", 3, 7, 4, 1, _dc_zva, el0=True, trap="TDZ"),
    _op("DC CVAC", 3, 7, 10, 1, _check_maintenance_address, el0=True, trap="TPC"),
    _op("DC CVAU", 3, 7, 11, 1, _check_maintenance_address, el0=True, trap="TPU"),
    _op("DC CIVAC", 3, 7, 14, 1, _check_maintenance_address, el0=True, trap="TPC"),
    _op("AT S1E1R", 0, 7, 8, 0, _at),
    _op("AT S1E1W", 0, 7, 8, 1, _at),
    _op("AT S1E0R", 0, 7, 8, 2, _at),
    _op("AT S1E0W", 0, 7, 8, 3, _at),
    *(_op(f"TLBI {name}IS", 0, 8, 3, op2, _ignore, trap="TTLB") for op2, name in _TLBI_OPS.items()),
    *(_op(f"TLBI {name}", 0, 8, 7, op2, _ignore, trap="TTLB") for op2, name in _TLBI_OPS.items()),
)}


# -- access checks -------------------------------------------------------------------------------
def undefined_when(predicate: Callable[[CpuState], bool], undefined: Op) -> Guard:
    def guard(s: CpuState) -> int | None:
        return undefined(s) if predicate(s) else None

    return guard


def at_el0(s: CpuState) -> bool:
    return not s.el


def el0_trap(control: int, bits: int, trap_when_set: bool, iss: int, pc: int) -> Guard:
    """EL0 access disabled by an EL1 control: trapped to EL1 with EC 0x18."""

    def guard(s: CpuState) -> int | None:
        if not s.el and (not s.sr[control] & bits) != trap_when_set:
            return take_exception(s, ESR_ELx_EC_SYS64, iss, pc)
        return None

    return guard


def _el2_trap(field: str, bits: int, syndrome: int) -> Guard:
    """An HCR_EL2/MDCR_EL2 trap: EC 0x18 to EL2, preferred return the instruction itself."""
    control = attrgetter(field)

    def guard(s: CpuState) -> int | None:
        if control(s) & bits:
            raise TrapToEL2(syndrome)
        return None

    return guard


def _chain(guards: list[Guard]) -> Guard | None:
    """One guard running ``guards`` in order until one takes an exception."""
    if not guards:
        return None
    first, rest = guards[0], _chain(guards[1:])
    if rest is None:
        return first

    def guard(s: CpuState) -> int | None:
        vector = first(s)
        return vector if vector is not None else rest(s)

    return guard


def _guard(cpu: "Cpu", insn: int, pc: int, enc: int, el0_allowed: bool, trap: str,
           undefined_if: Callable[[CpuState], bool] | None, rt: int, is_read: bool) -> Guard | None:
    """The checks of an access, in the architecture's priority order (module docstring)."""
    undefined = cpu.undefined_op(insn, pc)
    iss = sys64_iss(*sys_reg_fields(enc), rt, is_read)
    guards: list[Guard] = []
    if not el0_allowed:
        guards.append(undefined_when(at_el0, undefined))
    elif enc in EL0_ENABLES:
        guards.append(el0_trap(*EL0_ENABLES[enc], iss, pc))
    if undefined_if is not None:
        guards.append(undefined_when(undefined_if, undefined))
    if trap:
        field, read_bits, write_bits = TRAP_GROUPS[trap]
        bits = read_bits if is_read else write_bits
        if bits:
            guards.append(_el2_trap(field, bits, esr(ESR_ELx_EC_SYS64, iss)))
    return _chain(guards)


def guarded(guard: Guard | None, op: Op) -> Op:
    """``op`` preceded by ``guard`` (which returns a vector when it takes an exception)."""
    if guard is None:
        return op

    def checked(s: CpuState) -> int:
        vector = guard(s)
        return vector if vector is not None else op(s)

    return checked


def _reader(cpu: "Cpu", desc: SysRegDesc) -> Callable[[CpuState], int]:
    special = SPECIAL.get(desc.enc)
    if special is not None and special.read is not None:
        return partial(special.read, cpu)
    enc = desc.enc
    return lambda s: s.sr[enc]


def _writer(cpu: "Cpu", desc: SysRegDesc) -> Callable[[CpuState, int], None]:
    special = SPECIAL.get(desc.enc)
    if special is not None and special.write is not None:
        write = partial(special.write, cpu)
    else:
        enc, mask = desc.enc, WRITE_MASKS.get(desc.enc, MASK64)

        def write(s: CpuState, value: int) -> None:
            s.sr[enc] = value & mask

    if desc.trap not in _DEBUG_GROUPS:
        return write

    def write_debug(s: CpuState, value: int) -> None:
        write(s, value)
        raise ReselectLoop()

    return write_debug


# -- instruction builders -------------------------------------------------------------------------
def mrs_op(cpu: "Cpu", insn: int, pc: int, enc: int, rt: int) -> Op:
    """C6.2 MRS: Xt = the system register ``enc``."""
    desc = SYSREGS.get(enc)
    if desc is None or desc.access not in ("rw", "ro"):
        return cpu.undefined_op(insn, pc)
    special = SPECIAL.get(enc)
    guard = _guard(cpu, insn, pc, enc, "r" in desc.el0, desc.trap,
                   special and special.undefined_if, rt, True)
    read = _reader(cpu, desc)
    X, dest, nxt = cpu.state.x, ZR_WRITE if rt == 31 else rt, pc + 4

    def mrs(s: CpuState) -> int:
        X[dest] = read(s)
        return nxt

    return guarded(guard, mrs)


def msr_op(cpu: "Cpu", insn: int, pc: int, enc: int, rt: int) -> Op:
    """C6.2 MSR (register): the system register ``enc`` = Xt."""
    desc = SYSREGS.get(enc)
    if desc is None or desc.access not in ("rw", "wo"):
        return cpu.undefined_op(insn, pc)
    special = SPECIAL.get(enc)
    guard = _guard(cpu, insn, pc, enc, desc.el0 == "rw", desc.trap,
                   special and special.undefined_if, rt, False)
    return guarded(guard, _apply_op(_writer(cpu, desc), cpu.state.x, rt, pc + 4))


def sys_op(cpu: "Cpu", insn: int, pc: int, enc: int, rt: int) -> Op:
    """C6.2 SYS: the operation ``enc`` with argument Xt (unallocated ones UNDEFINED)."""
    op = SYSOPS.get(enc)
    if op is None:
        return cpu.undefined_op(insn, pc)
    guard = _guard(cpu, insn, pc, enc, op.el0, op.trap, None, rt, False)
    return guarded(guard, _apply_op(partial(op.action, cpu), cpu.state.x, rt, pc + 4))


def _apply_op(apply: Callable[[CpuState, int], None], X: list[int], rt: int, nxt: int) -> Op:
    def write(s: CpuState) -> int:
        apply(s, X[rt])
        return nxt

    return write
