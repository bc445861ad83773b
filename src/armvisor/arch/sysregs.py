"""The system-register table: name <-> encoding, reset value, access rights, EL2 trap group.

Values are those of a Cortex-A57-like PE (QEMU's ``-cpu cortex-a57``) except where armvisor
differs on purpose, which is said next to the entry. Arm ARM chapter D19 (AArch64 System
Register Descriptions) is the reference for each encoding.
"""

from __future__ import annotations

from dataclasses import dataclass

from armvisor.arch.sysreg_encoding import sys_reg


@dataclass(frozen=True)
class SysRegDesc:
    """One system register.

    ``access``: "rw", "ro" (MSR is UNDEFINED) or "wo" (MRS is UNDEFINED).
    ``el0``: EL0 access: "" none, "r" read only, "rw"; further enables (SCTLR_EL1.UCT,
    UMA, DZE, CNTKCTL) are applied by the CPU.
    ``trap``: the EL2 trap group that can route the access to EL2 (HCR_EL2 TID1/TID2/TID3/TACR/
    TVM, MDCR_EL2 TDA/TDOSA/TDRA), or "" for none.
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
PAN = sys_reg(3, 0, 4, 2, 3)
NZCV = sys_reg(3, 3, 4, 2, 0)
DAIF = sys_reg(3, 3, 4, 2, 1)
ESR_EL1 = sys_reg(3, 0, 5, 2, 0)
FAR_EL1 = sys_reg(3, 0, 6, 0, 0)
VBAR_EL1 = sys_reg(3, 0, 12, 0, 0)
MDSCR_EL1 = sys_reg(2, 0, 0, 2, 2)
CONTEXTIDR_EL1 = sys_reg(3, 0, 13, 0, 1)
SP_EL1 = sys_reg(3, 4, 4, 1, 0)
OSLAR_EL1 = sys_reg(2, 0, 1, 0, 4)
OSLSR_EL1 = sys_reg(2, 0, 1, 1, 4)
OSDLR_EL1 = sys_reg(2, 0, 1, 3, 4)
DCZID_EL0 = sys_reg(3, 3, 0, 0, 7)

# Reset value of SCTLR_EL1 on this PE (QEMU cortex-a57: 0x00c50838).
SCTLR_EL1_RESET = 0x00C50838

SYSREGS: dict[int, SysRegDesc] = {}
SYSREGS_BY_NAME: dict[str, SysRegDesc] = {}


def _register(*descs: SysRegDesc) -> None:
    for d in descs:
        if d.enc in SYSREGS:
            raise ValueError(f"duplicate system register encoding for {d.name}")
        SYSREGS[d.enc] = d
        SYSREGS_BY_NAME[d.name] = d


_register(
    _r("MIDR_EL1", 3, 0, 0, 0, 0, 0x411FD070, "ro"),
    _r("MPIDR_EL1", 3, 0, 0, 0, 5, 0x80000000, "ro"),
    _r("SCTLR_EL1", 3, 0, 1, 0, 0, SCTLR_EL1_RESET, trap="TVM"),
    _r("ACTLR_EL1", 3, 0, 1, 0, 1, trap="TACR"),
    _r("CPACR_EL1", 3, 0, 1, 0, 2),
    _r("TTBR0_EL1", 3, 0, 2, 0, 0, trap="TVM"),
    _r("TTBR1_EL1", 3, 0, 2, 0, 1, trap="TVM"),
    _r("TCR_EL1", 3, 0, 2, 0, 2, trap="TVM"),
    _r("SPSR_EL1", 3, 0, 4, 0, 0),
    _r("ELR_EL1", 3, 0, 4, 0, 1),
    _r("ESR_EL1", 3, 0, 5, 2, 0, trap="TVM"),
    _r("FAR_EL1", 3, 0, 6, 0, 0, trap="TVM"),
    _r("VBAR_EL1", 3, 0, 12, 0, 0),
    _r("CONTEXTIDR_EL1", 3, 0, 13, 0, 1, trap="TVM"),
    _r("MDSCR_EL1", 2, 0, 0, 2, 2, trap="TDA"),
    _r("DCZID_EL0", 3, 3, 0, 0, 7, 0x4, "ro", el0="r"),
)
