"""The PE's memory accesses: translation, alignment, faults, self-modifying-code detection.

With SCTLR_EL1.M=0 (the only regime implemented so far) a virtual address is the physical
address, data accesses are to Device-nGnRnE memory and so must be aligned (Arm ARM D8.2.10,
B2.5.2), and an address beyond the implemented PA size is a level-0 address size fault.
Stage 2 is modelled as the hypervisor's identity map of the RAM regions: an IPA with no RAM
takes a stage-2 translation fault to EL2, as KVM's MMIO does on hardware.

Accessors are closures specialised per size over the main RAM region (``PhysicalMemory.main``), rebuilt by
:meth:`MemoryAccess.refresh` whenever the layout or the translation regime changes (the owner
then also flushes decoded instructions, which captured them).
"""

from __future__ import annotations

from collections.abc import Callable

from armvisor.arch.esr import (
    ESR_ELx_FSC_ADDRSZ,
    ESR_ELx_FSC_ALIGN,
    ESR_ELx_FSC_FAULT,
    ESR_ELx_FSC_PERM,
)
from armvisor.arch.sysregs import SCTLR_EL1, SCTLR_EL1_M
from armvisor.cpu.memory import PAGE_SHIFT, PhysicalMemory
from armvisor.cpu.state import CpuState
from armvisor.cpu.stops import DataAbort, InstructionAbort

PA_BITS = 44  # ID_AA64MMFR0_EL1.PARange = 0b0100, as on Cortex-A57

Reader = Callable[[int], int]
Writer = Callable[[int, int], None]


def stage2_fault_level(phys: PhysicalMemory, ipa: int) -> int:
    """Lookup level at which a 4 KB-granule stage-2 walk finds no entry for ``ipa``.

    The hypervisor's tables only exist where RAM is mapped: no RAM in the same 1 GB block means
    the level-1 entry is invalid, none in the same 2 MB block the level-2 entry, else level 3.
    """
    gb, mb2 = ipa >> 30, ipa >> 21
    level = 1
    for region in phys.regions:
        if region.base >> 30 <= gb <= (region.end - 1) >> 30:
            level = max(level, 2)
            if region.base >> 21 <= mb2 <= (region.end - 1) >> 21:
                return 3
    return level


class MemoryAccess:
    """Loads, stores and fetches of one PE, with the fault each can raise."""

    def __init__(self, state: CpuState, phys: PhysicalMemory) -> None:
        self.state = state
        self.phys = phys
        # Pages (physical page number) holding decoded instructions of any PE (shared).
        self.code_pages = phys.code_pages
        self.generation = -1
        self.read: dict[int, Reader] = {}
        self.write: dict[int, Writer] = {}
        # Set while watchpoints may match: called as watch(va, size, is_write) before each
        # data access; it raises WatchpointHit.
        self.watch: Callable[[int, int, bool], None] | None = None
        self.refresh()

    # -- building the fast paths -------------------------------------------------------------
    def refresh(self) -> None:
        """Rebuild the per-size accessors for the current layout and regime."""
        if self.state.sr.get(SCTLR_EL1, 0) & SCTLR_EL1_M:
            raise NotImplementedError("stage-1 translation (SCTLR_EL1.M=1) is not implemented")
        self.generation = self.phys.generation
        if self.watch is None:
            self.read = {size: self._make_reader(size) for size in (1, 2, 4, 8)}
            self.write = {size: self._make_writer(size) for size in (1, 2, 4, 8)}
        else:
            self.read = {size: self._make_watched_reader(size) for size in (1, 2, 4, 8)}
            self.write = {size: self._make_watched_writer(size) for size in (1, 2, 4, 8)}

    def _make_reader(self, size: int) -> Reader:
        region = self.phys.main
        slow = self._slow_read
        if region is None:
            return lambda va: slow(va, size)
        view, base, end, shift, amask = region.views[size], region.base, region.end, size.bit_length() - 1, size - 1

        def read(va: int) -> int:
            if not va & amask and base <= va < end:
                return view[(va - base) >> shift]
            return slow(va, size)

        return read

    def _make_writer(self, size: int) -> Writer:
        region = self.phys.main
        slow = self._slow_write
        if region is None or region.readonly:
            return lambda va, value: slow(va, size, value)
        view, base, end, shift = region.views[size], region.base, region.end, size.bit_length() - 1
        amask, vmask = size - 1, (1 << (8 * size)) - 1
        code_pages = self.code_pages
        invalidate = self._code_written

        def write(va: int, value: int) -> None:
            if not va & amask and base <= va < end:
                if va >> PAGE_SHIFT in code_pages:
                    invalidate(va)
                view[(va - base) >> shift] = value & vmask
            else:
                slow(va, size, value)

        return write

    def _make_watched_reader(self, size: int) -> Reader:
        inner, watch = self._make_reader(size), self.watch
        assert watch is not None

        def read(va: int) -> int:
            watch(va, size, False)
            return inner(va)

        return read

    def _make_watched_writer(self, size: int) -> Writer:
        inner, watch = self._make_writer(size), self.watch
        assert watch is not None

        def write(va: int, value: int) -> None:
            watch(va, size, True)
            inner(va, value)

        return write

    def _code_written(self, pa: int) -> None:
        self.phys.code_written(pa >> PAGE_SHIFT)

    # -- translation and faults --------------------------------------------------------------
    def translate_data(self, va: int, size: int, is_write: bool) -> int:
        """VA -> PA for a data access (MMU off), raising the stage-1 fault it would take."""
        if va & (size - 1):
            raise DataAbort(va, is_write, ESR_ELx_FSC_ALIGN, stage=1)
        if va >> PA_BITS:
            raise DataAbort(va, is_write, ESR_ELx_FSC_ADDRSZ, stage=1)
        return va

    def _ram(self, va: int, pa: int, size: int, is_write: bool):
        region = self.phys.find(pa, size)
        if region is None:
            level = stage2_fault_level(self.phys, pa)
            raise DataAbort(va, is_write, ESR_ELx_FSC_FAULT + level, stage=2, ipa=pa)
        if is_write and region.readonly:
            raise DataAbort(va, True, ESR_ELx_FSC_PERM + 3, stage=2, ipa=pa)
        return region

    def _slow_read(self, va: int, size: int) -> int:
        pa = self.translate_data(va, size, False)
        region = self._ram(va, pa, size, False)
        return region.views[size][(pa - region.base) // size]

    def _slow_write(self, va: int, size: int, value: int) -> None:
        pa = self.translate_data(va, size, True)
        region = self._ram(va, pa, size, True)
        if pa >> PAGE_SHIFT in self.code_pages:
            self._code_written(pa)
        region.views[size][(pa - region.base) // size] = value & ((1 << (8 * size)) - 1)

    def check_access(self, va: int, size: int, is_write: bool) -> int:
        """Translate and check a data access without performing it (used by multi-part
        accesses so that they fault before changing anything); returns the PA."""
        pa = self.translate_data(va, size, is_write)
        self._ram(va, pa, size, is_write)
        return pa

    def fetch(self, va: int) -> tuple[int, int]:
        """Fetch the instruction word at ``va``; returns (word, pa). Instruction fetches with the
        MMU off are to Normal memory, so only PA size and stage 2 can fault."""
        main = self.phys.main
        if main is not None:
            offset = va - main.base
            if 0 <= offset <= main.size - 4:
                return main.views[4][offset >> 2], va
        if va >> PA_BITS:
            raise InstructionAbort(va, ESR_ELx_FSC_ADDRSZ, stage=1)
        region = self.phys.find(va, 4)
        if region is None:
            raise InstructionAbort(va, ESR_ELx_FSC_FAULT + stage2_fault_level(self.phys, va),
                                   stage=2, ipa=va)
        return region.views[4][(va - region.base) >> 2], va


