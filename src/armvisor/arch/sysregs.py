"""The system-register table: name <-> encoding, reset value, access rights, EL2 trap group.

Values are those of a Cortex-A57-like PE (QEMU's ``-cpu cortex-a57``) except where armvisor
differs on purpose, which is said next to the entry. Arm ARM chapter D19 (AArch64 System
Register Descriptions) is the reference for each encoding.

Deliberate differences from a Cortex-A57:

* ID_AA64PFR0_EL1 = 0x1111: EL0-EL3 are AArch64 only (armvisor implements no AArch32); the
  A57 says 0x2222. FP and AdvSIMD are 0 ("implemented") as on the A57.
* ID_AA64ISAR0_EL1 = 0x210000: CRC32 (0b0001) and, because armvisor implements the LSE atomics,
  Atomic = 0b0010; AES/SHA1/SHA2 (SIMD crypto, 0x11120 on the A57) are not implemented.
* RVBAR_EL1 is absent: it exists only when EL1 is the highest implemented EL.
* No IMPLEMENTATION DEFINED registers (CPUACTLR_EL1, L2CTLR_EL1, ...): they are UNDEFINED, as
  under KVM, which traps them with HCR_EL2.TIDCP and injects an UNDEFINED exception.
* The AArch32 ID registers keep the A57's values (UNKNOWN architecturally without AArch32).
"""

from __future__ import annotations

from dataclasses import dataclass

from armvisor.arch.sysreg_encoding import sys_reg


@dataclass(frozen=True)
class SysRegDesc:
    """One system register.

    ``access``: "rw", "ro" (MSR is UNDEFINED), "wo" (MRS is UNDEFINED) or "" (no MRS/MSR
    access from EL0/EL1 at all: the register is listed for the PE's owner, e.g. SP_EL1).
    ``el0``: EL0 access: "" none, "r" read only, "rw"; further enables (SCTLR_EL1.UCT,
    UMA, DZE, CNTKCTL) are applied by the CPU.
    ``trap``: the EL2 trap group that can route the access to EL2 (HCR_EL2 TID1/TID2/TID3/TACR/
    TVM, MDCR_EL2 TDA/TDOSA/TDRA/TPM/TPMCR), or "" for none.
    """

    name: str
    enc: int
    reset: int = 0
    access: str = "rw"
    el0: str = ""
    trap: str = ""


def _r(name: str, op0: int, op1: int, crn: int, crm: int, op2: int, reset: int = 0,
       access: str = "rw", el0: str = "", trap: str = "") -> SysRegDesc:
    return SysRegDesc(name, sys_reg(op0, op1, crn, crm, op2), reset, access, el0, trap)


# MPIDR_EL1 affinity fields Aff3 [39:32], Aff2 [23:16], Aff1 [15:8], Aff0 [7:0] (Linux's name).
MPIDR_HWID_BITMASK = 0xFF00FFFFFF

MIDR_EL1 = sys_reg(3, 0, 0, 0, 0)
MPIDR_EL1 = sys_reg(3, 0, 0, 0, 5)
SCTLR_EL1 = sys_reg(3, 0, 1, 0, 0)
ACTLR_EL1 = sys_reg(3, 0, 1, 0, 1)
CPACR_EL1 = sys_reg(3, 0, 1, 0, 2)
TTBR0_EL1 = sys_reg(3, 0, 2, 0, 0)
TTBR1_EL1 = sys_reg(3, 0, 2, 0, 1)
TCR_EL1 = sys_reg(3, 0, 2, 0, 2)
SPSR_EL1 = sys_reg(3, 0, 4, 0, 0)
ELR_EL1 = sys_reg(3, 0, 4, 0, 1)
SP_EL0 = sys_reg(3, 0, 4, 1, 0)
SPSEL = sys_reg(3, 0, 4, 2, 0)
CURRENTEL = sys_reg(3, 0, 4, 2, 2)
PAN = sys_reg(3, 0, 4, 2, 3)  # FEAT_PAN (v8.1): not implemented, UNDEFINED on this PE
NZCV = sys_reg(3, 3, 4, 2, 0)
DAIF = sys_reg(3, 3, 4, 2, 1)
ESR_EL1 = sys_reg(3, 0, 5, 2, 0)
FAR_EL1 = sys_reg(3, 0, 6, 0, 0)
PAR_EL1 = sys_reg(3, 0, 7, 4, 0)
VBAR_EL1 = sys_reg(3, 0, 12, 0, 0)
MDSCR_EL1 = sys_reg(2, 0, 0, 2, 2)
CONTEXTIDR_EL1 = sys_reg(3, 0, 13, 0, 1)
SP_EL1 = sys_reg(3, 4, 4, 1, 0)
OSLAR_EL1 = sys_reg(2, 0, 1, 0, 4)
OSLSR_EL1 = sys_reg(2, 0, 1, 1, 4)
OSDLR_EL1 = sys_reg(2, 0, 1, 3, 4)
DCZID_EL0 = sys_reg(3, 3, 0, 0, 7)
CTR_EL0 = sys_reg(3, 3, 0, 0, 1)
CCSIDR_EL1 = sys_reg(3, 1, 0, 0, 0)
CSSELR_EL1 = sys_reg(3, 2, 0, 0, 0)
CNTKCTL_EL1 = sys_reg(3, 0, 14, 1, 0)
CNTFRQ_EL0 = sys_reg(3, 3, 14, 0, 0)
CNTPCT_EL0 = sys_reg(3, 3, 14, 0, 1)
CNTVCT_EL0 = sys_reg(3, 3, 14, 0, 2)
CNTP_TVAL_EL0 = sys_reg(3, 3, 14, 2, 0)
CNTP_CTL_EL0 = sys_reg(3, 3, 14, 2, 1)
CNTP_CVAL_EL0 = sys_reg(3, 3, 14, 2, 2)
CNTV_TVAL_EL0 = sys_reg(3, 3, 14, 3, 0)
CNTV_CTL_EL0 = sys_reg(3, 3, 14, 3, 1)
CNTV_CVAL_EL0 = sys_reg(3, 3, 14, 3, 2)
DBGCLAIMSET_EL1 = sys_reg(2, 0, 7, 8, 6)
DBGCLAIMCLR_EL1 = sys_reg(2, 0, 7, 9, 6)
PMCR_EL0 = sys_reg(3, 3, 9, 12, 0)
PMCNTENSET_EL0 = sys_reg(3, 3, 9, 12, 1)
PMCNTENCLR_EL0 = sys_reg(3, 3, 9, 12, 2)
PMOVSCLR_EL0 = sys_reg(3, 3, 9, 12, 3)
PMSELR_EL0 = sys_reg(3, 3, 9, 12, 5)
PMCCNTR_EL0 = sys_reg(3, 3, 9, 13, 0)
PMXEVTYPER_EL0 = sys_reg(3, 3, 9, 13, 1)
PMXEVCNTR_EL0 = sys_reg(3, 3, 9, 13, 2)
PMUSERENR_EL0 = sys_reg(3, 3, 9, 14, 0)
PMINTENSET_EL1 = sys_reg(3, 0, 9, 14, 1)
PMINTENCLR_EL1 = sys_reg(3, 0, 9, 14, 2)
PMOVSSET_EL0 = sys_reg(3, 3, 9, 14, 3)
PMCCFILTR_EL0 = sys_reg(3, 3, 14, 15, 7)

# Reset value of SCTLR_EL1 on this PE (QEMU cortex-a57: 0x00c50838).
SCTLR_EL1_RESET = 0x00C50838

# SCTLR_EL1 fields (Arm ARM D19.2.118, ARMv8.0).
SCTLR_EL1_M = 1 << 0
SCTLR_EL1_SA = 1 << 3
SCTLR_EL1_SA0 = 1 << 4
SCTLR_EL1_UMA = 1 << 9
SCTLR_EL1_DZE = 1 << 14
SCTLR_EL1_UCT = 1 << 15
SCTLR_EL1_NTWI = 1 << 16
SCTLR_EL1_NTWE = 1 << 18
SCTLR_EL1_E0E = 1 << 24
SCTLR_EL1_EE = 1 << 25
SCTLR_EL1_UCI = 1 << 26

# HCR_EL2 / MDCR_EL2 trap controls the PE honours (Arm ARM D19.2.48, D19.3.17; Linux names).
HCR_TWI = 1 << 13
HCR_TWE = 1 << 14
HCR_TID1 = 1 << 16
HCR_TID2 = 1 << 17
HCR_TID3 = 1 << 18
HCR_TSC = 1 << 19
HCR_TACR = 1 << 21
HCR_TSW = 1 << 22
HCR_TPC = 1 << 23
HCR_TPU = 1 << 24
HCR_TTLB = 1 << 25
HCR_TVM = 1 << 26
HCR_TDZ = 1 << 28
HCR_HCD = 1 << 29
HCR_TRVM = 1 << 30
MDCR_EL2_TPMCR = 1 << 5
MDCR_EL2_TPM = 1 << 6
MDCR_EL2_TDE = 1 << 8
MDCR_EL2_TDA = 1 << 9
MDCR_EL2_TDOSA = 1 << 10
MDCR_EL2_TDRA = 1 << 11

# OSLSR_EL1: OSLM = 0b10 (bit 3, OS Lock implemented), OSLK (bit 1) = 1 after a cold reset
# (Arm ARM, OSLSR_EL1; QEMU resets it to 0xa). Linux clears the lock at boot.
OSLSR_EL1_OSLK = 1 << 1
OSLSR_EL1_RESET = 0b1010

# ID_AA64DFR0_EL1 of the A57: 6 breakpoints (2 context-aware), 4 watchpoints, PMUv3, v8 debug.
ID_AA64DFR0_EL1_RESET = 0x10305106
NUM_BREAKPOINTS = 6
NUM_WATCHPOINTS = 4
# PMCR_EL0 of the A57: IMP=0x41, IDCODE=0x01, N=6 event counters.
PMCR_EL0_RESET = 0x41013000
NUM_PMU_COUNTERS = 6

# Cache geometry (CCSIDR_EL1 per CSSELR_EL1 value: L1 D, L1 I, L2 unified).
CCSIDR_VALUES = {0: 0x701FE00A, 1: 0x201FE012, 2: 0x70FFE07A}

SYSREGS: dict[int, SysRegDesc] = {}
SYSREGS_BY_NAME: dict[str, SysRegDesc] = {}


def _register(*descs: SysRegDesc) -> None:
    for d in descs:
        if d.enc in SYSREGS:
            raise ValueError(f"duplicate system register encoding for {d.name}")
        if d.name in SYSREGS_BY_NAME:
            raise ValueError(f"duplicate system register name {d.name}")
        SYSREGS[d.enc] = d
        SYSREGS_BY_NAME[d.name] = d


# -- identification (D19.2: ID registers; the TID3 space is op0=3 op1=0 CRn=0 CRm=1..7) -----
_ID_VALUES = {
    (1, 0): ("ID_PFR0_EL1", 0x00000131),
    (1, 1): ("ID_PFR1_EL1", 0x00011011),
    (1, 2): ("ID_DFR0_EL1", 0x03010066),
    (1, 3): ("ID_AFR0_EL1", 0),
    (1, 4): ("ID_MMFR0_EL1", 0x10101105),
    (1, 5): ("ID_MMFR1_EL1", 0x40000000),
    (1, 6): ("ID_MMFR2_EL1", 0x01260000),
    (1, 7): ("ID_MMFR3_EL1", 0x02102211),
    (2, 0): ("ID_ISAR0_EL1", 0x02101110),
    (2, 1): ("ID_ISAR1_EL1", 0x13112111),
    (2, 2): ("ID_ISAR2_EL1", 0x21232042),
    (2, 3): ("ID_ISAR3_EL1", 0x01112131),
    (2, 4): ("ID_ISAR4_EL1", 0x00011142),
    (2, 5): ("ID_ISAR5_EL1", 0x00011121),
    (2, 6): ("ID_MMFR4_EL1", 0),
    (2, 7): ("ID_ISAR6_EL1", 0),
    (3, 0): ("MVFR0_EL1", 0x10110222),
    (3, 1): ("MVFR1_EL1", 0x12111111),
    (3, 2): ("MVFR2_EL1", 0x00000043),
    (3, 4): ("ID_PFR2_EL1", 0),
    (3, 5): ("ID_DFR1_EL1", 0),
    (3, 6): ("ID_MMFR5_EL1", 0),
    (4, 0): ("ID_AA64PFR0_EL1", 0x0000000000001111),  # deviation: see the module docstring
    (4, 1): ("ID_AA64PFR1_EL1", 0),
    (4, 4): ("ID_AA64ZFR0_EL1", 0),
    (4, 5): ("ID_AA64SMFR0_EL1", 0),
    (5, 0): ("ID_AA64DFR0_EL1", ID_AA64DFR0_EL1_RESET),
    (5, 1): ("ID_AA64DFR1_EL1", 0),
    (5, 4): ("ID_AA64AFR0_EL1", 0),
    (5, 5): ("ID_AA64AFR1_EL1", 0),
    (6, 0): ("ID_AA64ISAR0_EL1", 0x0000000000210000),  # deviation: see the module docstring
    (6, 1): ("ID_AA64ISAR1_EL1", 0),
    (6, 2): ("ID_AA64ISAR2_EL1", 0),
    (7, 0): ("ID_AA64MMFR0_EL1", 0x00001124),
    (7, 1): ("ID_AA64MMFR1_EL1", 0),
    (7, 2): ("ID_AA64MMFR2_EL1", 0),
}


def _id_space() -> list[SysRegDesc]:
    """Every encoding of the ID space: named ones with their values, the rest reserved RAZ
    (Arm ARM D19.2, "Reserved, RAZ" encodings, which software such as Linux reads)."""
    out = []
    for crm in range(1, 8):
        for op2 in range(8):
            name, value = _ID_VALUES.get((crm, op2), (f"S3_0_C0_C{crm}_{op2}", 0))
            out.append(_r(name, 3, 0, 0, crm, op2, value, "ro", trap="TID3"))
    return out


_register(
    _r("MIDR_EL1", 3, 0, 0, 0, 0, 0x411FD070, "ro"),
    _r("MPIDR_EL1", 3, 0, 0, 0, 5, 0x80000000, "ro"),
    _r("REVIDR_EL1", 3, 0, 0, 0, 6, 0, "ro", trap="TID1"),
    _r("AIDR_EL1", 3, 1, 0, 0, 7, 0, "ro", trap="TID1"),
    _r("CCSIDR_EL1", 3, 1, 0, 0, 0, CCSIDR_VALUES[0], "ro", trap="TID2"),
    _r("CLIDR_EL1", 3, 1, 0, 0, 1, 0x0A200023, "ro", trap="TID2"),
    _r("CSSELR_EL1", 3, 2, 0, 0, 0, trap="TID2"),
    _r("CTR_EL0", 3, 3, 0, 0, 1, 0x8444C004, "ro", el0="r", trap="TID2"),
    _r("DCZID_EL0", 3, 3, 0, 0, 7, 0x4, "ro", el0="r"),
    *_id_space(),
)

# -- system control, translation control, fault reporting ---------------------------------
_register(
    _r("SCTLR_EL1", 3, 0, 1, 0, 0, SCTLR_EL1_RESET, trap="TVM"),
    _r("ACTLR_EL1", 3, 0, 1, 0, 1, trap="TACR"),
    _r("CPACR_EL1", 3, 0, 1, 0, 2),
    _r("TTBR0_EL1", 3, 0, 2, 0, 0, trap="TVM"),
    _r("TTBR1_EL1", 3, 0, 2, 0, 1, trap="TVM"),
    _r("TCR_EL1", 3, 0, 2, 0, 2, trap="TVM"),
    _r("AFSR0_EL1", 3, 0, 5, 1, 0, trap="TVM"),
    _r("AFSR1_EL1", 3, 0, 5, 1, 1, trap="TVM"),
    _r("ESR_EL1", 3, 0, 5, 2, 0, trap="TVM"),
    _r("FAR_EL1", 3, 0, 6, 0, 0, trap="TVM"),
    _r("PAR_EL1", 3, 0, 7, 4, 0),
    _r("MAIR_EL1", 3, 0, 10, 2, 0, trap="TVM"),
    _r("AMAIR_EL1", 3, 0, 10, 3, 0, trap="TVM"),
    _r("VBAR_EL1", 3, 0, 12, 0, 0),
    _r("ISR_EL1", 3, 0, 12, 1, 0, 0, "ro"),
    _r("CONTEXTIDR_EL1", 3, 0, 13, 0, 1, trap="TVM"),
    _r("TPIDR_EL1", 3, 0, 13, 0, 4),
    _r("TPIDR_EL0", 3, 3, 13, 0, 2, el0="rw"),
    _r("TPIDRRO_EL0", 3, 3, 13, 0, 3, el0="r"),
)

# -- special-purpose registers (C5.2) --------------------------------------------------------
_register(
    _r("SPSR_EL1", 3, 0, 4, 0, 0),
    _r("ELR_EL1", 3, 0, 4, 0, 1),
    _r("SP_EL0", 3, 0, 4, 1, 0),
    _r("SPSel", 3, 0, 4, 2, 0, 1),
    _r("CurrentEL", 3, 0, 4, 2, 2, 0b0100, "ro"),
    _r("NZCV", 3, 3, 4, 2, 0, el0="rw"),
    _r("DAIF", 3, 3, 4, 2, 1, 0x3C0, el0="rw"),
    _r("SP_EL1", 3, 4, 4, 1, 0, access=""),
)

# -- generic timer (D11; behaviour in armvisor.cpu.timer) -----------------------------------------
_register(
    _r("CNTKCTL_EL1", 3, 0, 14, 1, 0),
    _r("CNTFRQ_EL0", 3, 3, 14, 0, 0, 62_500_000, "ro", el0="r"),
    _r("CNTPCT_EL0", 3, 3, 14, 0, 1, 0, "ro", el0="r"),
    _r("CNTVCT_EL0", 3, 3, 14, 0, 2, 0, "ro", el0="r"),
    _r("CNTP_TVAL_EL0", 3, 3, 14, 2, 0, el0="rw"),
    _r("CNTP_CTL_EL0", 3, 3, 14, 2, 1, el0="rw"),
    _r("CNTP_CVAL_EL0", 3, 3, 14, 2, 2, el0="rw"),
    _r("CNTV_TVAL_EL0", 3, 3, 14, 3, 0, el0="rw"),
    _r("CNTV_CTL_EL0", 3, 3, 14, 3, 1, el0="rw"),
    _r("CNTV_CVAL_EL0", 3, 3, 14, 3, 2, el0="rw"),
)

# -- GICv3 CPU interface, System register interface (IHI 0069, chapter 12) --------------------
# Trapped to EL2 as with ICH_HCR_EL2.TC/TALL0/TALL1 set (the hypervisor emulates the CPU
# interface); ICC_SRE_EL1 is in the TC group here (armvisor's choice: on hardware
# ICC_SRE_EL2.Enable traps it).
ICH_HCR_EL2_TC = 1 << 10
ICH_HCR_EL2_TALL0 = 1 << 11
ICH_HCR_EL2_TALL1 = 1 << 12
_register(
    _r("ICC_PMR_EL1", 3, 0, 4, 6, 0, trap="ICH_TC"),
    _r("ICC_IAR0_EL1", 3, 0, 12, 8, 0, 0, "ro", trap="ICH_TALL0"),
    _r("ICC_EOIR0_EL1", 3, 0, 12, 8, 1, 0, "wo", trap="ICH_TALL0"),
    _r("ICC_HPPIR0_EL1", 3, 0, 12, 8, 2, 0, "ro", trap="ICH_TALL0"),
    _r("ICC_BPR0_EL1", 3, 0, 12, 8, 3, trap="ICH_TALL0"),
    *(_r(f"ICC_AP0R{n}_EL1", 3, 0, 12, 8, 4 + n, trap="ICH_TALL0") for n in range(4)),
    *(_r(f"ICC_AP1R{n}_EL1", 3, 0, 12, 9, n, trap="ICH_TALL1") for n in range(4)),
    _r("ICC_DIR_EL1", 3, 0, 12, 11, 1, 0, "wo", trap="ICH_TC"),
    _r("ICC_RPR_EL1", 3, 0, 12, 11, 3, 0, "ro", trap="ICH_TC"),
    _r("ICC_SGI1R_EL1", 3, 0, 12, 11, 5, 0, "wo", trap="ICH_TC"),
    _r("ICC_ASGI1R_EL1", 3, 0, 12, 11, 6, 0, "wo", trap="ICH_TC"),
    _r("ICC_SGI0R_EL1", 3, 0, 12, 11, 7, 0, "wo", trap="ICH_TC"),
    _r("ICC_IAR1_EL1", 3, 0, 12, 12, 0, 0, "ro", trap="ICH_TALL1"),
    _r("ICC_EOIR1_EL1", 3, 0, 12, 12, 1, 0, "wo", trap="ICH_TALL1"),
    _r("ICC_HPPIR1_EL1", 3, 0, 12, 12, 2, 0, "ro", trap="ICH_TALL1"),
    _r("ICC_BPR1_EL1", 3, 0, 12, 12, 3, trap="ICH_TALL1"),
    _r("ICC_CTLR_EL1", 3, 0, 12, 12, 4, trap="ICH_TC"),
    _r("ICC_SRE_EL1", 3, 0, 12, 12, 5, trap="ICH_TC"),
    _r("ICC_IGRPEN0_EL1", 3, 0, 12, 12, 6, trap="ICH_TALL0"),
    _r("ICC_IGRPEN1_EL1", 3, 0, 12, 12, 7, trap="ICH_TALL1"),
)
ICC_TRAP_GROUPS = ("ICH_TC", "ICH_TALL0", "ICH_TALL1")

# -- self-hosted debug (D19.3) -------------------------------------------------------------------
_register(
    _r("OSDTRRX_EL1", 2, 0, 0, 0, 2, trap="TDA"),
    _r("MDCCINT_EL1", 2, 0, 0, 2, 0, trap="TDA"),
    _r("MDSCR_EL1", 2, 0, 0, 2, 2, trap="TDA"),
    _r("OSDTRTX_EL1", 2, 0, 0, 3, 2, trap="TDA"),
    _r("OSECCR_EL1", 2, 0, 0, 6, 2, trap="TDA"),
    *(_r(f"DBGBVR{n}_EL1", 2, 0, 0, n, 4, trap="TDA") for n in range(NUM_BREAKPOINTS)),
    *(_r(f"DBGBCR{n}_EL1", 2, 0, 0, n, 5, trap="TDA") for n in range(NUM_BREAKPOINTS)),
    *(_r(f"DBGWVR{n}_EL1", 2, 0, 0, n, 6, trap="TDA") for n in range(NUM_WATCHPOINTS)),
    *(_r(f"DBGWCR{n}_EL1", 2, 0, 0, n, 7, trap="TDA") for n in range(NUM_WATCHPOINTS)),
    _r("MDRAR_EL1", 2, 0, 1, 0, 0, 0, "ro", trap="TDRA"),
    _r("OSLAR_EL1", 2, 0, 1, 0, 4, 0, "wo", trap="TDOSA"),
    _r("OSLSR_EL1", 2, 0, 1, 1, 4, OSLSR_EL1_RESET, "ro", trap="TDOSA"),
    _r("OSDLR_EL1", 2, 0, 1, 3, 4, trap="TDOSA"),
    _r("DBGPRCR_EL1", 2, 0, 1, 4, 4, trap="TDOSA"),
    _r("DBGCLAIMSET_EL1", 2, 0, 7, 8, 6, 0xFF, trap="TDA"),
    _r("DBGCLAIMCLR_EL1", 2, 0, 7, 9, 6, trap="TDA"),
    _r("MDCCSR_EL0", 2, 3, 0, 1, 0, 0, "ro", el0="r", trap="TDA"),
    _r("DBGDTR_EL0", 2, 3, 0, 4, 0, el0="rw", trap="TDA"),
    # DBGDTRRX_EL0 (MRS) and DBGDTRTX_EL0 (MSR) share this encoding.
    _r("DBGDTRRX_EL0", 2, 3, 0, 5, 0, el0="rw", trap="TDA"),
)

# -- performance monitors (D12; PMUv3 registers as storage, the counters do not count) ---------
_register(
    _r("PMCR_EL0", 3, 3, 9, 12, 0, PMCR_EL0_RESET, el0="rw", trap="TPMCR"),
    _r("PMCNTENSET_EL0", 3, 3, 9, 12, 1, el0="rw", trap="TPM"),
    _r("PMCNTENCLR_EL0", 3, 3, 9, 12, 2, el0="rw", trap="TPM"),
    _r("PMOVSCLR_EL0", 3, 3, 9, 12, 3, el0="rw", trap="TPM"),
    _r("PMSWINC_EL0", 3, 3, 9, 12, 4, 0, "wo", el0="rw", trap="TPM"),
    _r("PMSELR_EL0", 3, 3, 9, 12, 5, el0="rw", trap="TPM"),
    _r("PMCEID0_EL0", 3, 3, 9, 12, 6, 0, "ro", el0="r", trap="TPM"),
    _r("PMCEID1_EL0", 3, 3, 9, 12, 7, 0, "ro", el0="r", trap="TPM"),
    _r("PMCCNTR_EL0", 3, 3, 9, 13, 0, el0="rw", trap="TPM"),
    _r("PMXEVTYPER_EL0", 3, 3, 9, 13, 1, el0="rw", trap="TPM"),
    _r("PMXEVCNTR_EL0", 3, 3, 9, 13, 2, el0="rw", trap="TPM"),
    _r("PMUSERENR_EL0", 3, 3, 9, 14, 0, el0="r", trap="TPM"),
    _r("PMINTENSET_EL1", 3, 0, 9, 14, 1, trap="TPM"),
    _r("PMINTENCLR_EL1", 3, 0, 9, 14, 2, trap="TPM"),
    _r("PMOVSSET_EL0", 3, 3, 9, 14, 3, el0="rw", trap="TPM"),
    *(_r(f"PMEVCNTR{n}_EL0", 3, 3, 14, 8 + n // 8, n % 8, el0="rw", trap="TPM")
      for n in range(NUM_PMU_COUNTERS)),
    *(_r(f"PMEVTYPER{n}_EL0", 3, 3, 14, 12 + n // 8, n % 8, el0="rw", trap="TPM")
      for n in range(NUM_PMU_COUNTERS)),
    _r("PMCCFILTR_EL0", 3, 3, 14, 15, 7, el0="rw", trap="TPM"),
)

PMEVCNTR = [SYSREGS_BY_NAME[f"PMEVCNTR{n}_EL0"].enc for n in range(NUM_PMU_COUNTERS)]
PMEVTYPER = [SYSREGS_BY_NAME[f"PMEVTYPER{n}_EL0"].enc for n in range(NUM_PMU_COUNTERS)]
