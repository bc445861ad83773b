"""Exception vector table layout for exceptions taken to EL1 (Arm ARM D1.10.2, Table D1-7):
a 2 KB table of four groups (by where the exception came from) of four 0x80-byte entries
(by exception type)."""

from __future__ import annotations

from armvisor.arch.pstate import (
    PSR_MODE32_BIT,
    PSR_MODE_MASK,
    PSR_MODE_EL0t,
    PSR_MODE_EL1t,
)

VECTOR_ENTRY_SIZE = 0x80
# Entry by exception type.
VECTOR_SYNC = 0x000
VECTOR_IRQ = 0x080
VECTOR_FIQ = 0x100
VECTOR_SERROR = 0x180
# Group by the state the exception was taken from.
VECTOR_CURRENT_SP0 = 0x000
VECTOR_CURRENT_SPX = 0x200
VECTOR_LOWER_A64 = 0x400
VECTOR_LOWER_A32 = 0x600


def vector_group(pstate: int) -> int:
    """The group an exception to EL1 from a PE in ``pstate`` (SPSR format) uses."""
    if pstate & PSR_MODE32_BIT:
        return VECTOR_LOWER_A32
    mode = pstate & PSR_MODE_MASK
    if mode == PSR_MODE_EL0t:
        return VECTOR_LOWER_A64
    return VECTOR_CURRENT_SP0 if mode == PSR_MODE_EL1t else VECTOR_CURRENT_SPX
