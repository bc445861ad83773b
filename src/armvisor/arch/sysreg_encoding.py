"""System-register encodings (Arm ARM C5.3): (op0, op1, CRn, CRm, op2) packed as KVM packs them.

The packed value ``op0<<14 | op1<<11 | CRn<<7 | CRm<<3 | op2`` is the low half of a KVM ONE_REG
system-register id (``KVM_REG_ARM64_SYSREG``), so one key serves the CPU, KVM and gdb.
"""

from __future__ import annotations


def sys_reg(op0: int, op1: int, crn: int, crm: int, op2: int) -> int:
    """Pack an encoding, like Linux's ``sys_reg()`` macro (without its shift)."""
    return (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2


def sys_reg_fields(enc: int) -> tuple[int, int, int, int, int]:
    """Unpack an encoding into (op0, op1, CRn, CRm, op2)."""
    return (enc >> 14) & 3, (enc >> 11) & 7, (enc >> 7) & 0xF, (enc >> 3) & 0xF, enc & 7
