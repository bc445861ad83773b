"""Exception Syndrome Register layout (Arm ARM D17.2.37 ESR_ELx; Linux ``asm/esr.h``).

Names follow Linux's ``ESR_ELx_*`` so the two can be read side by side.
"""

from __future__ import annotations

ESR_ELx_EC_SHIFT = 26
ESR_ELx_EC_MASK = 0x3F << ESR_ELx_EC_SHIFT
ESR_ELx_IL_SHIFT = 25
ESR_ELx_IL = 1 << ESR_ELx_IL_SHIFT
ESR_ELx_ISS_MASK = (1 << 25) - 1

# Exception classes (ESR_ELx.EC).
ESR_ELx_EC_UNKNOWN = 0x00
ESR_ELx_EC_WFx = 0x01
ESR_ELx_EC_CP15_32 = 0x03
ESR_ELx_EC_CP15_64 = 0x04
ESR_ELx_EC_CP14_MR = 0x05
ESR_ELx_EC_CP14_LS = 0x06
ESR_ELx_EC_FP_ASIMD = 0x07
ESR_ELx_EC_CP10_ID = 0x08
ESR_ELx_EC_PAC = 0x09
ESR_ELx_EC_CP14_64 = 0x0C
ESR_ELx_EC_BTI = 0x0D
ESR_ELx_EC_ILL = 0x0E
ESR_ELx_EC_SVC32 = 0x11
ESR_ELx_EC_HVC32 = 0x12
ESR_ELx_EC_SMC32 = 0x13
ESR_ELx_EC_SVC64 = 0x15
ESR_ELx_EC_HVC64 = 0x16
ESR_ELx_EC_SMC64 = 0x17
ESR_ELx_EC_SYS64 = 0x18
ESR_ELx_EC_SVE = 0x19
ESR_ELx_EC_ERET = 0x1A
ESR_ELx_EC_IABT_LOW = 0x20
ESR_ELx_EC_IABT_CUR = 0x21
ESR_ELx_EC_PC_ALIGN = 0x22
ESR_ELx_EC_DABT_LOW = 0x24
ESR_ELx_EC_DABT_CUR = 0x25
ESR_ELx_EC_SP_ALIGN = 0x26
ESR_ELx_EC_FP_EXC32 = 0x28
ESR_ELx_EC_FP_EXC64 = 0x2C
ESR_ELx_EC_SERROR = 0x2F
ESR_ELx_EC_BREAKPT_LOW = 0x30
ESR_ELx_EC_BREAKPT_CUR = 0x31
ESR_ELx_EC_SOFTSTP_LOW = 0x32
ESR_ELx_EC_SOFTSTP_CUR = 0x33
ESR_ELx_EC_WATCHPT_LOW = 0x34
ESR_ELx_EC_WATCHPT_CUR = 0x35
ESR_ELx_EC_BKPT32 = 0x38
ESR_ELx_EC_VECTOR32 = 0x3A
ESR_ELx_EC_BRK64 = 0x3C
ESR_ELx_EC_MAX = 0x3F

# Data/instruction abort ISS (Arm ARM D17.2.37, "ISS encoding for an exception from a Data Abort").
ESR_ELx_ISV_SHIFT = 24
ESR_ELx_ISV = 1 << ESR_ELx_ISV_SHIFT
ESR_ELx_SAS_SHIFT = 22
ESR_ELx_SAS = 3 << ESR_ELx_SAS_SHIFT
ESR_ELx_SSE_SHIFT = 21
ESR_ELx_SSE = 1 << ESR_ELx_SSE_SHIFT
ESR_ELx_SRT_SHIFT = 16
ESR_ELx_SRT_MASK = 0x1F << ESR_ELx_SRT_SHIFT
ESR_ELx_SF_SHIFT = 15
ESR_ELx_SF = 1 << ESR_ELx_SF_SHIFT
ESR_ELx_AR_SHIFT = 14
ESR_ELx_AR = 1 << ESR_ELx_AR_SHIFT
ESR_ELx_FnV_SHIFT = 10
ESR_ELx_FnV = 1 << ESR_ELx_FnV_SHIFT
ESR_ELx_EA_SHIFT = 9
ESR_ELx_EA = 1 << ESR_ELx_EA_SHIFT
ESR_ELx_CM_SHIFT = 8
ESR_ELx_CM = 1 << ESR_ELx_CM_SHIFT
ESR_ELx_S1PTW_SHIFT = 7
ESR_ELx_S1PTW = 1 << ESR_ELx_S1PTW_SHIFT
ESR_ELx_WNR_SHIFT = 6
ESR_ELx_WNR = 1 << ESR_ELx_WNR_SHIFT
ESR_ELx_FSC = 0x3F

# Fault status codes (DFSC/IFSC).
ESR_ELx_FSC_ADDRSZ = 0x00  # address size fault, level 0 (+level)
ESR_ELx_FSC_FAULT = 0x04  # translation fault, level 0 (+level)
ESR_ELx_FSC_ACCESS = 0x08  # access flag fault, level 0 (+level)
ESR_ELx_FSC_PERM = 0x0C  # permission fault, level 0 (+level)
ESR_ELx_FSC_EXTABT = 0x10  # synchronous external abort
ESR_ELx_FSC_ALIGN = 0x21  # alignment fault
ESR_ELx_FSC_DEBUG = 0x22  # debug exception (breakpoint, watchpoint, step)

# Common condition fields of trapped-instruction syndromes.
ESR_ELx_CV = 1 << 24
ESR_ELx_COND_SHIFT = 20
ESR_ELx_COND_MASK = 0xF << ESR_ELx_COND_SHIFT
# CV=1 with COND=AL: what a trapped instruction from AArch64 reports (WFx, FP/SIMD access).
ESR_ELx_CV_COND_AL = ESR_ELx_CV | (0xE << ESR_ELx_COND_SHIFT)

# WFx ISS.
ESR_ELx_WFx_ISS_RN = 0x1F << 5
ESR_ELx_WFx_ISS_RV = 1 << 2
ESR_ELx_WFx_ISS_TI = 3
ESR_ELx_WFx_ISS_WFI = 0
ESR_ELx_WFx_ISS_WFE = 1

# HVC/SMC/SVC/BRK immediate.
ESR_ELx_xVC_IMM_MASK = 0xFFFF
ESR_ELx_BRK64_ISS_COMMENT_MASK = 0xFFFF

# SYS64 (MSR/MRS/SYS trap) ISS.
ESR_ELx_SYS64_ISS_DIR_READ = 1
ESR_ELx_SYS64_ISS_CRM_SHIFT = 1
ESR_ELx_SYS64_ISS_RT_SHIFT = 5
ESR_ELx_SYS64_ISS_CRN_SHIFT = 10
ESR_ELx_SYS64_ISS_OP1_SHIFT = 14
ESR_ELx_SYS64_ISS_OP2_SHIFT = 17
ESR_ELx_SYS64_ISS_OP0_SHIFT = 20

# Software step ISS (Arm ARM D17.2.37, EC 0b11001x).
ESR_ELx_SS_ISV = 1 << 24
ESR_ELx_SS_EX = 1 << 6


def esr(ec: int, iss: int, il: bool = True) -> int:
    """Compose an ESR value from EC, IL and ISS."""
    return (ec << ESR_ELx_EC_SHIFT) | (ESR_ELx_IL if il else 0) | (iss & ESR_ELx_ISS_MASK)


def esr_ec(value: int) -> int:
    """ESR_ELx.EC of a syndrome."""
    return (value >> ESR_ELx_EC_SHIFT) & 0x3F


def esr_iss(value: int) -> int:
    """ESR_ELx.ISS of a syndrome."""
    return value & ESR_ELx_ISS_MASK


def sys64_iss(op0: int, op1: int, crn: int, crm: int, op2: int, rt: int, is_read: bool) -> int:
    """ISS of a trapped MSR/MRS/SYS instruction (EC 0x18)."""
    return (
        (op0 << ESR_ELx_SYS64_ISS_OP0_SHIFT)
        | (op2 << ESR_ELx_SYS64_ISS_OP2_SHIFT)
        | (op1 << ESR_ELx_SYS64_ISS_OP1_SHIFT)
        | (crn << ESR_ELx_SYS64_ISS_CRN_SHIFT)
        | (rt << ESR_ELx_SYS64_ISS_RT_SHIFT)
        | (crm << ESR_ELx_SYS64_ISS_CRM_SHIFT)
        | (ESR_ELx_SYS64_ISS_DIR_READ if is_read else 0)
    )


def dabt_iss_access(size_log2: int, sign_extend: bool, rt: int, sf: bool, acq_rel: bool) -> int:
    """The instruction-syndrome part (ISV=1) of a data abort ISS for a single-register access."""
    return (
        ESR_ELx_ISV
        | (size_log2 << ESR_ELx_SAS_SHIFT)
        | (ESR_ELx_SSE if sign_extend else 0)
        | (rt << ESR_ELx_SRT_SHIFT)
        | (ESR_ELx_SF if sf else 0)
        | (ESR_ELx_AR if acq_rel else 0)
    )
