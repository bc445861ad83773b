"""The PE: state, memory view, decode cache and the executor loop.

``Cpu.run(budget)`` executes A64 instructions at EL0/EL1 until the budget ends, an exception is
taken to EL2 (returned as a :class:`~armvisor.cpu.stops.HypTrap` with PC at ELR_EL2), or an
untrapped WFI completes. Exceptions to EL1 are taken inside the loop, as hardware does.

Decode once: an instruction word becomes an :data:`~armvisor.cpu.decoder.Op` the first time
its address is executed; the op is cached by address and dropped when a store hits its page.
"""

from __future__ import annotations

from armvisor.arch.esr import (
    ESR_ELx_CM,
    ESR_ELx_EC_DABT_CUR,
    ESR_ELx_EC_DABT_LOW,
    ESR_ELx_EC_IABT_CUR,
    ESR_ELx_EC_IABT_LOW,
    ESR_ELx_EC_PC_ALIGN,
    ESR_ELx_EC_UNKNOWN,
    ESR_ELx_WNR,
    esr,
)
from armvisor.arch.sysregs import SYSREGS
from armvisor.cpu.access import MemoryAccess
from armvisor.cpu.decoder import DecodeTable, Op
from armvisor.cpu.exceptions import take_exception
from armvisor.cpu.memory import PAGE_SHIFT, PhysicalMemory
from armvisor.cpu.state import CpuState
from armvisor.cpu.stops import (
    Budget,
    DataAbort,
    HypTrap,
    InstructionAbort,
    Stop,
    TrapToEL2,
    UnsupportedFeature,
    WaitForInterrupt,
    WaitForInterruptSignal,
)


class PCAlignmentFault(Exception):
    """The PC is not a multiple of 4 when an instruction is fetched."""


def _top_level_tables() -> list[tuple[DecodeTable, ...]]:
    """The A64 main encoding table (Arm ARM C4.1, op0 = insn<28:25>) -> group tables."""
    from armvisor.cpu.isa import branch, dp_imm, dp_reg, fp, ldst, system

    unallocated: tuple[DecodeTable, ...] = ()
    groups: list[tuple[DecodeTable, ...]] = [unallocated] * 16
    for op0 in (0b1000, 0b1001):
        groups[op0] = (dp_imm.TABLE,)
    for op0 in (0b1010, 0b1011):
        groups[op0] = (branch.TABLE, system.TABLE)
    for op0 in (0b0100, 0b0110, 0b1100, 0b1110):
        groups[op0] = (ldst.TABLE,)
    for op0 in (0b0101, 0b1101):
        groups[op0] = (dp_reg.TABLE,)
    for op0 in (0b0111, 0b1111):
        groups[op0] = (fp.TABLE,)
    return groups


class Cpu:
    """One AArch64 PE at EL0/EL1 with an EL2 owner that configures traps (HCR_EL2, MDCR_EL2)."""

    def __init__(self, phys: PhysicalMemory | None = None) -> None:
        self.phys = phys if phys is not None else PhysicalMemory()
        self.state = CpuState()
        self.access = MemoryAccess(self.state, self.phys)
        self.access.on_code_write = self._invalidate_page
        self.cache: dict[int, Op] = {}
        self.page_pcs: dict[int, list[int]] = {}
        self.groups = _top_level_tables()
        self.icount = 0  # instructions executed (or exceptions taken) since creation
        self.reset()

    # -- reset and configuration -------------------------------------------------------------
    def reset(self) -> None:
        """Architectural reset into EL1h, DAIF masked, registers zero, system registers at their
        reset values (Arm ARM D1.9; KVM's reset state)."""
        s = self.state
        s.x[:] = [0] * 33
        s.banked_sp[:] = [0, 0]
        s.sp = 0
        s.pc = 0
        s.nzcv = 0
        s.pstate = 0x3C5
        s.exclusive = None
        s.sr.clear()
        for desc in SYSREGS.values():
            s.sr[desc.enc] = desc.reset
        self.flush_decoded()

    def flush_decoded(self) -> None:
        """Drop every decoded instruction and rebuild the memory accessors (after a change of
        memory layout, translation regime or anything ops captured at decode time)."""
        self.cache.clear()
        self.page_pcs.clear()
        self.access.code_pages.clear()
        self.access.refresh()

    def _invalidate_page(self, page: int) -> None:
        for pc in self.page_pcs.pop(page, ()):
            self.cache.pop(pc, None)
        self.access.code_pages.discard(page)

    # -- decoding ----------------------------------------------------------------------------
    def decode(self, insn: int, pc: int) -> Op:
        """Decode one instruction word at address ``pc`` (not cached)."""
        for table in self.groups[(insn >> 25) & 0xF]:
            hit = table.lookup(insn)
            if hit is not None:
                return hit[1](self, insn, pc)
        return self.undefined_op(insn, pc)

    def decode_at(self, pc: int) -> Op:
        if pc & 3:
            raise PCAlignmentFault(pc)
        word, pa = self.access.fetch(pc)
        op = self.decode(word, pc)
        page = pa >> PAGE_SHIFT
        self.cache[pc] = op
        self.page_pcs.setdefault(page, []).append(pc)
        self.access.code_pages.add(page)
        return op

    def undefined_op(self, insn: int, pc: int) -> Op:
        """An op that takes the UNDEFINED exception (EC 0x00, IL=1) for ``insn`` at ``pc``."""

        def undefined(s: CpuState) -> int:
            return take_exception(s, ESR_ELx_EC_UNKNOWN, 0, pc)

        undefined.insn = insn  # type: ignore[attr-defined]
        return undefined

    # -- execution ---------------------------------------------------------------------------
    def run(self, budget: int) -> Stop:
        """Execute at most ``budget`` instructions; see the module docstring for the stops."""
        if self.access.generation != self.phys.generation:
            self.flush_decoded()
        s = self.state
        cache = self.cache
        decode_at = self.decode_at
        pc = s.pc
        n = 0
        op: Op | None = None
        while True:
            try:
                while n < budget:
                    op = cache.get(pc) or decode_at(pc)
                    pc = op(s)
                    n += 1
                s.pc = pc
                self.icount += n
                return Budget()
            except TrapToEL2 as trap:
                elr = pc if trap.return_pc is None else trap.return_pc
                s.pc = elr
                self.icount += n + 1
                return HypTrap(trap.esr, trap.far, trap.hpfar, elr)
            except DataAbort as abort:
                n += 1
                stop = self._data_abort(abort, op, pc)
                if isinstance(stop, HypTrap):
                    self.icount += n
                    return stop
                pc = stop
            except InstructionAbort as abort:
                n += 1
                stop = self._instruction_abort(abort, pc)
                if isinstance(stop, HypTrap):
                    self.icount += n
                    return stop
                pc = stop
            except PCAlignmentFault:
                n += 1
                pc = take_exception(s, ESR_ELx_EC_PC_ALIGN, 0, pc, far=pc)
            except WaitForInterruptSignal as wfi:
                s.pc = wfi.next_pc
                self.icount += n + 1
                return WaitForInterrupt()
            except UnsupportedFeature:
                s.pc = pc
                self.icount += n
                raise

    def _data_abort(self, abort: DataAbort, op: Op | None, pc: int) -> HypTrap | int:
        s = self.state
        iss = abort.fsc | (ESR_ELx_WNR if abort.is_write else 0) | (ESR_ELx_CM if abort.cm else 0)
        if abort.stage == 1:
            ec = ESR_ELx_EC_DABT_CUR if s.el else ESR_ELx_EC_DABT_LOW
            return take_exception(s, ec, iss, pc, far=abort.va)
        iss |= getattr(op, "dabt_iss", 0)
        s.pc = pc
        return HypTrap(esr(ESR_ELx_EC_DABT_LOW, iss), abort.va, (abort.ipa >> 12) << 4, pc)

    def _instruction_abort(self, abort: InstructionAbort, pc: int) -> HypTrap | int:
        s = self.state
        if abort.stage == 1:
            ec = ESR_ELx_EC_IABT_CUR if s.el else ESR_ELx_EC_IABT_LOW
            return take_exception(s, ec, abort.fsc, pc, far=abort.va)
        s.pc = pc
        return HypTrap(esr(ESR_ELx_EC_IABT_LOW, abort.fsc), abort.va, (abort.ipa >> 12) << 4, pc)
