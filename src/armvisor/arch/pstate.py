"""PSTATE / SPSR_ELx bit layout for AArch64 (Arm ARM D1.4 and C5.2.18 SPSR_EL1)."""

from __future__ import annotations

PSR_N_BIT = 1 << 31
PSR_Z_BIT = 1 << 30
PSR_C_BIT = 1 << 29
PSR_V_BIT = 1 << 28
PSR_NZCV_SHIFT = 28
PSR_NZCV_MASK = 0xF << PSR_NZCV_SHIFT
PSR_PAN_BIT = 1 << 22
PSR_SS_BIT = 1 << 21  # Linux DBG_SPSR_SS
PSR_IL_BIT = 1 << 20
PSR_D_BIT = 1 << 9
PSR_A_BIT = 1 << 8
PSR_I_BIT = 1 << 7
PSR_F_BIT = 1 << 6
PSR_DAIF_MASK = PSR_D_BIT | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT
PSR_MODE32_BIT = 1 << 4
PSR_MODE_MASK = 0xF
PSR_MODE_EL0t = 0x0
PSR_MODE_EL1t = 0x4
PSR_MODE_EL1h = 0x5
PSR_MODE_EL2t = 0x8
PSR_MODE_EL2h = 0x9

# The 4-bit NZCV value the CPU keeps internally (N=8, Z=4, C=2, V=1).
NZCV_N = 8
NZCV_Z = 4
NZCV_C = 2
NZCV_V = 1

# Condition codes (Arm ARM C1.2.4).
COND_EQ, COND_NE, COND_CS, COND_CC, COND_MI, COND_PL, COND_VS, COND_VC = range(8)
COND_HI, COND_LS, COND_GE, COND_LT, COND_GT, COND_LE, COND_AL, COND_NV = range(8, 16)


def condition_holds(cond: int, nzcv: int) -> bool:
    """ConditionHolds() from the Arm ARM shared pseudocode, on a 4-bit NZCV value."""
    n = (nzcv >> 3) & 1
    z = (nzcv >> 2) & 1
    c = (nzcv >> 1) & 1
    v = nzcv & 1
    base = cond >> 1
    if base == 0:
        result = z == 1
    elif base == 1:
        result = c == 1
    elif base == 2:
        result = n == 1
    elif base == 3:
        result = v == 1
    elif base == 4:
        result = c == 1 and z == 0
    elif base == 5:
        result = n == v
    elif base == 6:
        result = n == v and z == 0
    else:
        return True  # AL, and NV which behaves as AL in A64
    return (not result) if (cond & 1) else result


# CONDITION_TABLE[cond][nzcv] -> bool, so hot paths index instead of evaluating.
CONDITION_TABLE: tuple[tuple[bool, ...], ...] = tuple(
    tuple(condition_holds(cond, nzcv) for nzcv in range(16)) for cond in range(16)
)
