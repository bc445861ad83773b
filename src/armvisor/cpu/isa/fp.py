"""Data processing -- SIMD and floating point (Arm ARM C4.1.96), and every other FP/SIMD access.

armvisor does not implement FP/AdvSIMD yet. An access is checked against CPACR_EL1.FPEN
(Arm ARM D19.2.30): when trapped it takes the architectural exception with EC 0x07 (what an
OS's lazy FP switching expects); when enabled the instruction is UNDEFINED in the guest and
reported once on the host, naming the encoding.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from armvisor.arch.esr import (
    ESR_ELx_CV_COND_AL,
    ESR_ELx_EC_FP_ASIMD,
    ESR_ELx_EC_UNKNOWN,
)
from armvisor.arch.sysregs import CPACR_EL1
from armvisor.cpu.decoder import DecodeTable, Op
from armvisor.cpu.exceptions import take_exception
from armvisor.cpu.state import CpuState

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu

log = logging.getLogger(__name__)

TABLE = DecodeTable("fp")

# ISS of an FP/SIMD access trap from AArch64: CV=1, COND=0b1110.
FP_TRAP_ISS = ESR_ELx_CV_COND_AL
CPACR_EL1_FPEN_SHIFT = 20

_reported: set[int] = set()


def fp_trapped(s: CpuState) -> bool:
    """CPACR_EL1.FPEN traps FP/SIMD at the current EL (0b01 traps EL0 only, 0b11 none)."""
    fpen = (s.sr.get(CPACR_EL1, 0) >> CPACR_EL1_FPEN_SHIFT) & 3
    return fpen == 0b00 or fpen == 0b10 or (fpen == 0b01 and s.el == 0)


def fp_access_op(cpu: "Cpu", insn: int, pc: int) -> Op:
    """The op for any FP/SIMD instruction (data processing, loads/stores, FPCR/FPSR access)."""

    def fp_access(s: CpuState) -> int:
        if fp_trapped(s):
            return take_exception(s, ESR_ELx_EC_FP_ASIMD, FP_TRAP_ISS, pc)
        if insn not in _reported:
            _reported.add(insn)
            log.warning("FP/SIMD instruction 0x%08x at 0x%x is not implemented: UNDEFINED", insn, pc)
        return take_exception(s, ESR_ELx_EC_UNKNOWN, 0, pc)

    return fp_access


TABLE.add("xxxx xxxx xxxx xxxx xxxx xxxx xxxx xxxx", "fp_simd")(fp_access_op)
