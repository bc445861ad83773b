"""The PE: state, memory view, decode cache and the executor loop.

``Cpu.run(budget)`` executes A64 instructions at EL0/EL1 until the budget ends, an exception is
taken to EL2 (returned as a :class:`~armvisor.cpu.stops.HypTrap` with PC at ELR_EL2), or an
untrapped WFI completes. Exceptions to EL1 are taken inside the loop, as hardware does.

Interrupts: the virtual IRQ/FIQ inputs (``CpuState.virq``/``vfiq``, driven by the owner's
interrupt controller) are not tested per instruction on the fast path. A pending unmasked
interrupt is taken when ``run`` starts or resumes after an exception (the owner changes the
inputs only between runs), after an instruction that unmasks (MSR DAIFClr/DAIF and ERET raise
:class:`~armvisor.cpu.stops.InterruptWindow` when an input is asserted), and before every
instruction of the debug loop; there it comes before a pending software step, so the step
exception is taken at the interrupt vector, as KVM shows on hardware (kvm-semantics §7.5).

Decode once: an instruction word becomes an :data:`~armvisor.cpu.decoder.Op` the first time
its address is executed; the op is cached by address and dropped when a store hits its page.
That is tier 0. Most instruction groups are defined as source text (:mod:`armvisor.cpu.emit`)
from which tier 0 builds its ops and :mod:`armvisor.cpu.translate` builds hot blocks (tier 1)
and loops (tier 2); the fast loop runs those where they start, the debug loop never does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

from armvisor.arch.esr import (
    ESR_ELx_CM,
    ESR_ELx_EC_BREAKPT_LOW,
    ESR_ELx_EC_DABT_LOW,
    ESR_ELx_EC_IABT_LOW,
    ESR_ELx_EC_ILL,
    ESR_ELx_EC_PC_ALIGN,
    ESR_ELx_EC_SOFTSTP_LOW,
    ESR_ELx_EC_UNKNOWN,
    ESR_ELx_EC_WATCHPT_LOW,
    ESR_ELx_FSC_DEBUG,
    ESR_ELx_SS_EX,
    ESR_ELx_SS_ISV,
    ESR_ELx_WNR,
    esr,
)
from armvisor.arch.pstate import PSR_DAIF_MASK, PSR_MODE_EL1h
from armvisor.arch.sysregs import MDCR_EL2_TDE, MDSCR_EL1, SYSREGS
from armvisor.cpu.access import MemoryAccess
from armvisor.cpu.debug import (
    MDSCR_EL1_MDE,
    MDSCR_EL1_SS,
    breakpoint_hit,
    debug_exceptions_enabled,
    debug_features_possible,
    step_active,
    watchpoint_hit,
)
from armvisor.cpu.decoder import DecodeTable, Op
from armvisor.cpu.emit import WORD_CACHE_LIMIT, Emitted, tier0_env
from armvisor.cpu.exceptions import (
    IllegalExecutionState,
    take_exception,
    take_interrupt,
)
from armvisor.cpu.memory import PAGE_SHIFT, PhysicalMemory
from armvisor.cpu.state import CpuState
from armvisor.cpu.stops import (
    Budget,
    CounterSample,
    DataAbort,
    HypTrap,
    InstructionAbort,
    InterruptWindow,
    ReselectLoop,
    Stop,
    TrapToEL2,
    WaitForInterrupt,
    WaitForInterruptSignal,
    WatchpointHit,
    YieldToOwner,
)
from armvisor.cpu.timer import Clock, InstructionClock
from armvisor.cpu.translate import Deopt, Tier1


class PCAlignmentFault(Exception):
    """The PC is not a multiple of 4 when an instruction is fetched."""


# What a loop of the executor hands back: (pc, n, stop) -- the run ends with ``stop`` after
# ``n`` instructions, or, with ``stop`` None, an exception was taken to EL1 and execution goes
# on at ``pc``.
LoopResult = tuple[int, int, Optional[Stop]]


# Debug exception classes (from a lower EL; +1 is the current-EL class, as for aborts).
SOFTWARE_STEP = ESR_ELx_EC_SOFTSTP_LOW
BREAKPOINT = ESR_ELx_EC_BREAKPT_LOW
WATCHPOINT = ESR_ELx_EC_WATCHPT_LOW


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
        self.phys.code_listeners.append(self._invalidate_page)
        self.cache: dict[int, Op] = {}
        # instruction word -> (op maker taking pc and pc + 4, data-abort syndrome), for the
        # position-independent words this PE decoded (built over its tier-0 environment).
        self.word_ops: dict[int, tuple[Callable[[int, int], Op], int]] = {}
        self.page_pcs: dict[int, list[int]] = {}
        self.groups = _top_level_tables()
        self.icount = 0  # instructions executed (or exceptions taken) since creation
        self.step_isv = False  # the last instruction completed under an active step
        self.step_ex = False  # ... and it was a load-exclusive
        self.clock: Clock = InstructionClock()  # the system counter's clock (cpu.timer)
        self._executed: int | None = None  # instructions of this run so far (debug loop only)
        self._stepping = False  # the debug loop's instruction runs under an active step
        self.tier1 = Tier1(self)
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
        s.pstate = PSR_DAIF_MASK | PSR_MODE_EL1h
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
        self.word_ops.clear()
        self.tier1.clear()
        self.access.refresh()
        self.tier0_env = tier0_env(self.state.x, self.access)

    def _invalidate_page(self, page: int) -> None:
        """A store (by any PE sharing this memory) hits ``page``: drop what was decoded or
        translated from it."""
        pcs = self.page_pcs.pop(page, [])
        for pc in pcs:
            self.cache.pop(pc, None)
        self.tier1.invalidate_page(page, pcs)

    # -- decoding ----------------------------------------------------------------------------
    def decode(self, insn: int, pc: int) -> Op:
        """Decode one instruction word at address ``pc`` (not cached by address)."""
        known = self.word_ops.get(insn)
        if known is not None:
            op = known[0](pc, pc + 4)
            if known[1]:
                op.dabt_iss = known[1]  # type: ignore[attr-defined]
            return op
        for table in self.groups[(insn >> 25) & 0xF]:
            hit = table.lookup(insn)
            if hit is not None:
                return hit[1](self, insn, pc)
        return self.undefined_op(insn, pc)

    def word_op(self, insn: int, make: Callable[[int, int], Op], dabt_iss: int, pc: int) -> Op:
        """Keep ``make(pc, npc)``, the op maker of a position-independent instruction word
        (:func:`armvisor.cpu.emit.emitter`), for later decodes of the word; the op at ``pc``."""
        if len(self.word_ops) >= WORD_CACHE_LIMIT:
            self.word_ops.clear()
        self.word_ops[insn] = (make, dabt_iss)
        return self.decode(insn, pc)

    def emitted(self, insn: int, pc: int) -> Emitted | None:
        """The instruction ``insn`` at ``pc`` as source (:mod:`armvisor.cpu.emit`), or None if
        it has no emitter or is UNDEFINED."""
        for table in self.groups[(insn >> 25) & 0xF]:
            hit = table.lookup(insn)
            if hit is not None:
                emit = getattr(hit[1], "emitter", None)
                return None if emit is None else emit(insn, pc)
        return None

    def decode_at(self, pc: int) -> Op:
        if pc & 3:
            raise PCAlignmentFault(pc)
        word, pa = self.access.fetch(pc)
        op = self.tier1.decoded(pc, self.decode(word, pc))
        page = pa >> PAGE_SHIFT
        self.cache[pc] = op
        pcs = self.page_pcs.get(page)
        if pcs is None:  # the first instruction this PE decodes from the page
            pcs = self.page_pcs[page] = []
            self.access.code_pages.add(page)
        pcs.append(pc)
        return op

    def undefined_op(self, insn: int, pc: int) -> Op:
        """An op that takes the UNDEFINED exception (EC 0x00, IL=1) for ``insn`` at ``pc``."""

        def undefined(s: CpuState) -> int:
            return take_exception(s, ESR_ELx_EC_UNKNOWN, 0, pc)

        undefined.insn = insn  # type: ignore[attr-defined]
        return undefined

    # -- execution ----------------------------------------------------------------------------
    def run(self, budget: int) -> Stop:
        """Execute at most ``budget`` instructions; see the module docstring for the stops.

        Each call is an entry from EL2: a software step that completes after it reports ISV=0
        (as for an instruction the hypervisor emulated), unless an instruction ran first.
        """
        self.step_isv = False
        self.step_ex = False
        s = self.state
        s.mdscr_sync = s.sr.get(MDSCR_EL1, 0)  # the entry from EL2 synchronizes context
        pc = s.pc
        n = 0
        while True:
            if s.virq or s.vfiq:
                vector = take_interrupt(s, pc)
                if vector is not None:
                    pc, n = vector, n + 1
                    self.step_isv = False
            debug = debug_features_possible(s)
            if self.access.generation != self.phys.generation or (self.access.watch is not None) != debug:
                self.access.watch = self._watch if debug else None
                self.flush_decoded()
            if debug:
                pc, n, stop = self._run_debug(pc, n, budget)
            else:
                pc, n, stop = self._run_fast(pc, n, budget)
            if stop is not None:
                self._account(n)
                return stop

    def _account(self, n: int) -> None:
        """A run ends after ``n`` instructions (or exception entries): count them, and let an
        instruction-count clock advance."""
        self.icount += n
        self.clock.advance(n)

    def physical_count(self) -> int:
        """CNTPCT_EL0 now. An instruction-count clock needs the instructions this run has
        executed: the debug loop knows them, the fast loop raises CounterSample to learn them."""
        clock = self.clock
        if not clock.counts_instructions:
            return clock.count()
        if self._executed is None:
            raise CounterSample()
        return clock.count(self._executed)

    def _run_fast(self, pc: int, n: int, budget: int) -> LoopResult:
        """The loop without debug checks: a translated block where one starts at the PC and the
        budget has room for all of it, else the decoded instruction (tier 0); repeat.

        A block that cannot complete an instruction (:class:`~armvisor.cpu.translate.Deopt`)
        stops before it with everything earlier done; that instruction then runs at tier 0."""
        s = self.state
        cache = self.cache
        blocks = self.tier1.entries
        candidate = self.tier1.candidate
        decode_at = self.decode_at
        op: Op | None = None
        translated = False  # the last thing run was translated code
        while True:
            try:
                while n < budget:
                    block = blocks.get(pc)
                    if block is not None:
                        k = block[1]
                        if k > 0:
                            if n + k <= budget:
                                pc = block[0](s)
                                n += k
                                translated = True
                                continue
                        elif n - k <= budget:  # a loop, with room for a whole pass
                            pc, k = block[0](s, budget - n)
                            n += k
                            translated = True
                            continue
                    if translated:
                        # Translated code led here (an indirect branch's target, the way
                        # around an untranslated instruction): worth a block too if it is hot.
                        candidate(pc)
                        translated = False
                    op = cache.get(pc) or decode_at(pc)
                    pc = op(s)
                    n += 1
                s.pc = pc
                return pc, n, Budget()
            except Deopt as deopt:
                pc, done = self.tier1.deopt(deopt.__traceback__)
                n += done
                try:
                    op = cache.get(pc) or decode_at(pc)
                    pc = op(s)
                    n += 1
                except Exception as exc:  # noqa: BLE001 - routed below, unknown ones re-raised
                    return self._route(exc, op, pc, n)
            except Exception as exc:  # noqa: BLE001 - routed below, unknown ones re-raised
                return self._route(exc, op, pc, n)

    def _run_debug(self, pc: int, n: int, budget: int) -> LoopResult:
        """One instruction at a time with the architectural debug checks (Arm ARM D2.7-D2.12):
        a pending software step, then breakpoints, then the instruction (watchpoints are
        checked by the memory accessors); PSTATE.SS is cleared when an instruction completes."""
        s = self.state
        op: Op | None = None
        try:
            while n < budget:
                op = None
                if s.virq or s.vfiq:
                    vector = take_interrupt(s, pc)
                    if vector is not None:
                        pc, n = vector, n + 1
                        self.step_isv = False
                        continue
                if debug_exceptions_enabled(s):
                    mdscr = s.mdscr_sync
                    if mdscr & MDSCR_EL1_SS and not s.ss:
                        pc = self._debug_exception(SOFTWARE_STEP, pc, 0)
                        n += 1
                        continue
                    if mdscr & MDSCR_EL1_MDE and breakpoint_hit(s, pc):
                        pc = self._debug_exception(BREAKPOINT, pc, 0)
                        n += 1
                        continue
                op = self.cache.get(pc) or self.decode_at(pc)
                self._stepping = bool(s.ss) and step_active(s)
                s.exception_taken = False
                self._executed = n
                pc = op(s)
                n += 1
                self._complete(op)
        except Exception as exc:  # noqa: BLE001 - routed below, unknown ones re-raised
            return self._route(exc, op, pc, n)
        finally:
            self._executed = None
            self._stepping = False
        s.pc = pc
        return pc, n, Budget()

    def _complete(self, op: Op | None) -> None:
        """Bookkeeping after an instruction completed (SSAdvance, Arm ARM D2.12): PSTATE.SS is
        cleared, except by ERET which set it; a completed step reports ISV=1 (and EX for a
        load-exclusive) unless an exception was taken instead."""
        s = self.state
        if getattr(op, "is_eret", False):
            self.step_isv = False
            return
        if self._stepping and not s.exception_taken:
            self.step_isv = True
            self.step_ex = bool(getattr(op, "is_load_exclusive", False))
        else:
            self.step_isv = False
        s.ss = 0

    def _debug_exception(self, kind: int, pc: int, iss_extra: int, far: int | None = None) -> int:
        """Take a breakpoint/step/watchpoint exception: to EL2 when MDCR_EL2.TDE routes debug
        there (raises), else to EL1 (returns the vector)."""
        s = self.state
        iss = ESR_ELx_FSC_DEBUG | iss_extra
        if kind == SOFTWARE_STEP:
            if self.step_isv:
                iss |= ESR_ELx_SS_ISV | (ESR_ELx_SS_EX if self.step_ex else 0)
            self.step_isv = False
        if s.mdcr_el2 & MDCR_EL2_TDE:
            raise TrapToEL2(esr(kind, iss), far=far or 0)
        ec = kind if s.el == 0 else kind + 1  # the "current EL" class is the next one
        return take_exception(s, ec, iss, pc, far=far)

    def _watch(self, va: int, size: int, is_write: bool) -> None:
        s = self.state
        if (s.mdscr_sync & MDSCR_EL1_MDE and debug_exceptions_enabled(s)
                and watchpoint_hit(s, va, size, is_write)):
            raise WatchpointHit(va, is_write)

    def _route(self, exc: Exception, op: Op | None, pc: int, n: int) -> LoopResult:
        """Turn an exception raised inside the instruction at ``pc`` (the ``n``-th of the run)
        into the architectural outcome: a stop to EL2/WFI, or an EL1 vector to go on at."""
        s = self.state
        if isinstance(exc, TrapToEL2):
            elr = pc if exc.return_pc is None else exc.return_pc
            s.pc = elr
            return elr, n + 1, HypTrap(exc.esr, exc.far, exc.hpfar, elr)
        if isinstance(exc, DataAbort):
            stop = self._data_abort(exc, op, pc)
        elif isinstance(exc, InstructionAbort):
            stop = self._instruction_abort(exc, pc)
        elif isinstance(exc, WatchpointHit):
            wnr = ESR_ELx_WNR if exc.is_write else 0
            try:
                stop = self._debug_exception(WATCHPOINT, pc, wnr, far=exc.va)
            except TrapToEL2 as trap:
                return self._route(trap, op, pc, n)
        elif isinstance(exc, PCAlignmentFault):
            stop = take_exception(s, ESR_ELx_EC_PC_ALIGN, 0, pc, far=pc)
        elif isinstance(exc, WaitForInterruptSignal):
            s.pc = exc.next_pc
            return exc.next_pc, n + 1, WaitForInterrupt()
        elif isinstance(exc, IllegalExecutionState):
            stop = self._illegal_execution_state(exc.target)
        elif isinstance(exc, ReselectLoop):
            stop = pc + 4
        elif isinstance(exc, InterruptWindow):
            self._complete(op)
            stop = pc + 4 if exc.next_pc is None else exc.next_pc
        elif isinstance(exc, YieldToOwner):
            self._complete(op)
            s.pc = pc + 4
            return pc + 4, n + 1, Budget()
        elif isinstance(exc, CounterSample) and op is not None:
            self._executed = n
            try:
                stop = op(s)
            except Exception as again:  # noqa: BLE001 - the retried instruction's own outcome
                return self._route(again, op, pc, n)
            finally:
                self._executed = None
        else:  # UnsupportedFeature, or a defect: the state is as before this instruction
            s.pc = pc
            self._account(n)
            raise exc
        if isinstance(stop, HypTrap):
            return pc, n + 1, stop
        return stop, n + 1, None

    def _illegal_execution_state(self, target: int) -> HypTrap | int:
        """The instruction at ``target`` runs with PSTATE.IL=1: a PC alignment fault or an
        Instruction Abort of its fetch, else the Illegal Execution state exception (EC 0x0E)."""
        s = self.state
        if target & 3:
            return take_exception(s, ESR_ELx_EC_PC_ALIGN, 0, target, far=target)
        try:
            self.access.fetch(target)
        except InstructionAbort as abort:
            return self._instruction_abort(abort, target)
        return take_exception(s, ESR_ELx_EC_ILL, 0, target)

    def _data_abort(self, abort: DataAbort, op: Op | None, pc: int) -> HypTrap | int:
        iss = abort.fsc | (ESR_ELx_WNR if abort.is_write else 0) | (ESR_ELx_CM if abort.cm else 0)
        if abort.stage == 2:
            iss |= getattr(op, "dabt_iss", 0)  # the instruction syndrome (ISV=1), EL2 only
        return self._abort(ESR_ELx_EC_DABT_LOW, iss, abort, pc)

    def _instruction_abort(self, abort: InstructionAbort, pc: int) -> HypTrap | int:
        return self._abort(ESR_ELx_EC_IABT_LOW, abort.fsc, abort, pc)

    def _abort(self, ec_low: int, iss: int, abort: DataAbort | InstructionAbort, pc: int) -> HypTrap | int:
        """A stage-1 abort is taken to EL1 (returns the vector; the current-EL class is
        ``ec_low + 1``), a stage-2 abort to EL2 with the IPA's page in HPFAR_EL2.FIPA."""
        s = self.state
        if abort.stage == 1:
            ec = ec_low + 1 if s.el else ec_low
            return take_exception(s, ec, iss, pc, far=abort.va)
        s.pc = pc
        return HypTrap(esr(ec_low, iss), abort.va, (abort.ipa >> 12) << 4, pc)
