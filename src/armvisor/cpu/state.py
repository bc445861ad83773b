"""Architectural state of one PE (Arm ARM D1.4 PSTATE, C5 system registers).

General-purpose registers live in ``x``, a list of 33 ints: X0..X30, then index 31 that always
reads 0 (XZR/WZR) and index 32 that absorbs writes to XZR. Decoders map register number 31 to
``ZR_READ``/``ZR_WRITE`` or to the stack pointer at decode time, so execution never tests it.

The stack pointer in use (SP_EL0 or SP_EL1, chosen by EL and PSTATE.SPSel) is ``sp``; the other
one waits in ``banked_sp``.  PSTATE is kept field by field; ``pstate`` packs it in SPSR format.
"""

from __future__ import annotations

from armvisor.arch.pstate import (
    PSR_DAIF_MASK,
    PSR_IL_BIT,
    PSR_MODE32_BIT,
    PSR_NZCV_SHIFT,
    PSR_PAN_BIT,
    PSR_SS_BIT,
)

ZR_READ = 31
ZR_WRITE = 32
MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1


class CpuState:
    """Registers and PSTATE of one PE. System registers are in ``sr``, keyed by encoding."""

    __slots__ = (
        "x", "sp", "banked_sp", "pc", "nzcv", "daif", "el", "spsel", "ss", "il", "pan",
        "sr", "hcr_el2", "mdcr_el2", "exclusive", "event_register", "exception_taken",
        "mdscr_sync", "virq", "vfiq", "cntvoff_el2", "ich_hcr_el2",
    )

    def __init__(self) -> None:
        self.x: list[int] = [0] * 33
        self.sp = 0
        self.banked_sp = [0, 0]  # [SP_EL0, SP_EL1]; the active one is stale here
        self.pc = 0
        self.nzcv = 0
        self.daif = PSR_DAIF_MASK
        self.el = 1
        self.spsel = 1
        self.ss = 0
        self.il = 0
        self.pan = 0
        self.sr: dict[int, int] = {}
        # EL2 trap configuration supplied by the PE's owner (the hypervisor).
        self.hcr_el2 = 0
        self.mdcr_el2 = 0
        self.cntvoff_el2 = 0  # CNTVCT_EL0 = CNTPCT_EL0 - CNTVOFF_EL2
        self.ich_hcr_el2 = 0  # the ICH_HCR_EL2 trap bits (TC, TALL0, TALL1)
        # The virtual interrupt inputs (HCR_EL2.VI/VF with IMO/FMO set) that the owner's
        # interrupt controller drives; the executor samples them (armvisor.cpu.core).
        self.virq = False
        self.vfiq = False
        # Local exclusive monitor: (physical address, size) while in the Exclusive Access state.
        self.exclusive: tuple[int, int] | None = None
        self.event_register = 0
        # Set by every exception entry; the debug loop uses it for the step syndrome's ISV.
        self.exception_taken = False
        # MDSCR_EL1 as the debug logic sees it: a direct write becomes visible to it only at
        # the next context synchronization event (ISB, exception entry or return).
        self.mdscr_sync = 0

    # -- stack pointers (Arm ARM D1.6.2) -------------------------------------------------------
    def sp_index(self) -> int:
        """Which SP_ELx is in use: 0 at EL0 or with SPSel=0, else the current EL."""
        return self.el if self.spsel else 0

    def get_sp_el(self, n: int) -> int:
        return self.sp if n == self.sp_index() else self.banked_sp[n]

    def set_sp_el(self, n: int, value: int) -> None:
        if n == self.sp_index():
            self.sp = value & MASK64
        else:
            self.banked_sp[n] = value & MASK64

    def set_el_spsel(self, el: int, spsel: int) -> None:
        """Change EL and SPSel together, swapping the stack pointer in use."""
        old = self.sp_index()
        self.banked_sp[old] = self.sp
        self.el = el
        self.spsel = spsel
        self.sp = self.banked_sp[self.sp_index()]

    # -- PSTATE as an SPSR value (Arm ARM C5.2.18) ----------------------------------------------
    @property
    def pstate(self) -> int:
        return (
            (self.nzcv << PSR_NZCV_SHIFT)
            | (PSR_PAN_BIT if self.pan else 0)
            | (PSR_SS_BIT if self.ss else 0)
            | (PSR_IL_BIT if self.il else 0)
            | self.daif
            | (self.el << 2)
            | self.spsel
        )

    @pstate.setter
    def pstate(self, value: int) -> None:
        """Load PSTATE from an SPSR-format value; the caller has checked the mode is legal."""
        if value & PSR_MODE32_BIT:
            raise ValueError(f"AArch32 PSTATE 0x{value:x} on an AArch64-only PE")
        self.nzcv = (value >> PSR_NZCV_SHIFT) & 0xF
        self.pan = (value >> 22) & 1
        self.ss = (value >> 21) & 1
        self.il = (value >> 20) & 1
        self.daif = value & PSR_DAIF_MASK
        self.set_el_spsel((value >> 2) & 3, value & 1)
