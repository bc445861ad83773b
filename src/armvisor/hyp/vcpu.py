"""A vcpu: the KVM_RUN loop, ONE_REG, init/reset and the run record (arch/arm64/kvm/arm.c,
guest.c, reset.c)."""

from __future__ import annotations

import errno
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, NoReturn

from armvisor.arch.esr import ESR_ELx_EC_SHIFT, ESR_ELx_EC_SOFTSTP_LOW, ESR_ELx_IL
from armvisor.arch.pstate import (
    PSR_MODE32_BIT,
    PSR_MODE_MASK,
    PSR_MODE_EL0t,
    PSR_MODE_EL1h,
    PSR_MODE_EL1t,
)
from armvisor.arch.sysregs import (
    CNTV_CTL_EL0,
    CNTV_CVAL_EL0,
    ELR_EL1,
    ICH_HCR_EL2_TALL0,
    ICH_HCR_EL2_TALL1,
    ICH_HCR_EL2_TC,
    MPIDR_EL1,
    OSLSR_EL1,
    SPSR_EL1,
    SYSREGS,
)
from armvisor.cpu import Budget, Cpu, HypTrap, WaitForInterrupt
from armvisor.cpu.state import MASK64
from armvisor.cpu.timer import (
    CNT_CTL_ENABLE,
    CNT_CTL_IMASK,
    CNT_CTL_ISTATUS,
    VIRTUAL_TIMER,
    condition_met,
)
from armvisor.hyp import uapi as U
from armvisor.hyp.adjust_pc import kvm_skip_instr
from armvisor.hyp.arch_timer import ArchTimer
from armvisor.hyp.debug import MDCR_EL2_TDOSA, MDCR_EL2_TDRA, GuestDebug
from armvisor.hyp.errors import KvmError, einval, enoent
from armvisor.hyp.handle_exit import handle_trap_exceptions
from armvisor.hyp.inject import kvm_inject_abt
from armvisor.hyp.mmio import kvm_handle_mmio_return
from armvisor.hyp.psci import PSCI_VERSION_0_2, PSCI_VERSION_1_0, PSCI_VERSION_1_1
from armvisor.hyp.run_record import KvmRun
from armvisor.hyp.sys_regs import ID_REG_TRAPS, sanitised_id_reg

if TYPE_CHECKING:
    from armvisor.hyp.vm import Vm

# HCR_EL2 bits KVM sets for an AArch64 guest (HCR_GUEST_FLAGS, the ones this PE models).
HCR_TWI = 1 << 13
HCR_TWE = 1 << 14
HCR_TID1 = 1 << 16
HCR_TID3 = 1 << 18
HCR_TSC = 1 << 19
HCR_TACR = 1 << 21
HCR_TSW = 1 << 22
HCR_RW = 1 << 31
HCR_GUEST_FLAGS = HCR_TWI | HCR_TWE | HCR_TID1 | HCR_TID3 | HCR_TSC | HCR_TACR | HCR_TSW | HCR_RW
MDCR_GUEST_FLAGS = MDCR_EL2_TDOSA | MDCR_EL2_TDRA
# The GIC CPU interface's System registers are emulated by hyp (vgic-sys-reg-v3.c).
ICH_HCR_GUEST_FLAGS = ICH_HCR_EL2_TC | ICH_HCR_EL2_TALL0 | ICH_HCR_EL2_TALL1

OSLSR_EL1_OSLM_IMPLEMENTED = 0x8
RUN_CHUNK = 20_000  # instructions between checks of the run's bounds
SUPPORTED_FEATURES = {U.KVM_ARM_VCPU_POWER_OFF, U.KVM_ARM_VCPU_PSCI_0_2}
VALID_PSTATE_MODES = {PSR_MODE_EL0t, PSR_MODE_EL1t, PSR_MODE_EL1h}
EXIT_STAT_KEYS = [f"exit_ec_0x{ec:02x}" for ec in range(64)]  # stat names by exception class
# The timer ONE_REG ids (their encodings of CNT and CVAL are swapped in KVM's ABI, on purpose).
TIMER_ONE_REGS = {
    U.KVM_REG_ARM_TIMER_CTL & 0xFFFF: lambda vcpu: vcpu._timer_ctl(),
    U.KVM_REG_ARM_TIMER_CNT & 0xFFFF: lambda vcpu: vcpu._timer_cnt(),
    U.KVM_REG_ARM_TIMER_CVAL & 0xFFFF: lambda vcpu: vcpu._timer_storage(CNTV_CVAL_EL0),
}


class Vcpu:
    """One vcpu of a :class:`~armvisor.hyp.vm.Vm` (created by ``Vm.create_vcpu``)."""

    def __init__(self, vm: "Vm", vcpu_id: int) -> None:
        self.vm = vm
        self.vcpu_id = vcpu_id
        self.cpu = Cpu(vm.phys)
        self.cpu.clock = vm.clock
        self.timer = ArchTimer(self)
        self._kick = threading.Event()  # set when something may have woken a blocked vcpu
        self.kvm_run = KvmRun()
        self.debug = GuestDebug(self)
        self.features: frozenset[int] | None = None
        self.psci_version = PSCI_VERSION_1_1
        self.powered_off = False
        self.mmio_needed = False
        self.trap_esr = 0
        self.fault_far = 0
        self.fp_regs = [0] * 32
        self.fpsr = 0
        self.fpcr = 0
        self.spsr_aarch32 = [0] * 4  # SPSR_ABT, _UND, _IRQ, _FIQ
        self.stat: Counter[str] = Counter()
        self._wfi_blocked = False
        self._one_regs: dict[int, tuple] = {}  # ONE_REG id -> (getter, setter, size)

    # -- KVM_ARM_VCPU_INIT -------------------------------------------------------------------
    @property
    def mpidr(self) -> int:
        """reset_mpidr: Aff0 = id[3:0], Aff1 = id[11:4], Aff2 = id[19:12], bit 31 RES1."""
        vid = self.vcpu_id
        return (1 << 31) | (vid & 0x0F) | (((vid >> 4) & 0xFF) << 8) | (((vid >> 12) & 0xFF) << 16)

    def init(self, features=()) -> None:
        """KVM_ARM_VCPU_INIT: validate the features and reset the vcpu architecturally."""
        feats = frozenset(int(f) for f in features)
        for f in feats:
            if f < 0 or f >= U.KVM_VCPU_MAX_FEATURES:
                raise enoent(f"unknown vcpu feature {f}")
            if f not in SUPPORTED_FEATURES:
                raise einval(f"vcpu feature {f} is not supported by armvisor")
        if self.features is not None and feats != self.features:
            raise einval("a vcpu cannot change its features on re-init")
        self.features = feats
        self.psci_version = PSCI_VERSION_1_1 if U.KVM_ARM_VCPU_PSCI_0_2 in feats else 0
        self.reset()
        self.powered_off = U.KVM_ARM_VCPU_POWER_OFF in feats

    def reset(self) -> None:
        """kvm_reset_vcpu: EL1h with DAIF masked, PC 0, registers 0, sysregs at reset."""
        self.cpu.reset()
        s = self.cpu.state
        s.sr[MPIDR_EL1] = self.mpidr
        s.sr[OSLSR_EL1] = OSLSR_EL1_OSLM_IMPLEMENTED  # KVM resets the OS Lock unlocked
        s.hcr_el2 = HCR_GUEST_FLAGS
        s.mdcr_el2 = MDCR_GUEST_FLAGS
        s.ich_hcr_el2 = ICH_HCR_GUEST_FLAGS
        self.mmio_needed = False
        self.fp_regs = [0] * 32
        self.fpsr = self.fpcr = 0
        self.spsr_aarch32 = [0] * 4

    def psci_reset(self, entry: int, context_id: int) -> None:
        """CPU_ON: reset with PC = entry, x0 = context id, powered on."""
        self.reset()
        s = self.cpu.state
        s.pc = entry & MASK64
        s.x[0] = context_id & MASK64
        self.powered_off = False
        self.wake()

    def power_off(self) -> None:
        self.powered_off = True

    # -- KVM_RUN -----------------------------------------------------------------------------
    def run(self, *, timeout: float | None = None, max_insns: int | None = None) -> KvmRun:
        """KVM_RUN. Returns the run record; errno-style failures raise :class:`KvmError`
        (EINTR with exit_reason KVM_EXIT_INTR when ``timeout``/``max_insns`` run out)."""
        run = self.kvm_run
        run.flags = 0
        if self.features is None:
            raise KvmError(errno.ENOEXEC, "vcpu not initialised (KVM_ARM_VCPU_INIT)")
        self.debug.load()
        self.cpu.state.exclusive = None  # entering the guest is an ERET: ClearExclusiveLocal
        try:
            if run.exit_reason == U.KVM_EXIT_MMIO:
                kvm_handle_mmio_return(self)
                if self.legacy_step_exit():
                    return run
            if run.immediate_exit:
                self._interrupted()
            ret = self._run_loop(timeout, max_insns)
        finally:
            self.debug.put()
        if ret < 0:
            raise KvmError(-ret)
        return run

    def _interrupted(self) -> NoReturn:
        self.kvm_run.exit_reason = U.KVM_EXIT_INTR
        raise KvmError(errno.EINTR, "run interrupted (bound reached or immediate_exit)")

    def _run_loop(self, timeout: float | None, max_insns: int | None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        left = max_insns
        cpu = self.cpu
        trace = self.vm.trace
        while True:
            if self.powered_off or self._wfi_blocked:
                if not self._wait(deadline, left):
                    # A signal ends the block: the WFI has completed (PC is already past it),
                    # a powered-off vcpu stays off.
                    self._wfi_blocked = False
                    self._interrupted()
                continue
            if deadline is not None and time.monotonic() >= deadline or left is not None and left <= 0:
                self._interrupted()
            budget = self._flush_interrupts(RUN_CHUNK if left is None else min(RUN_CHUNK, left))
            before = cpu.icount
            if trace is not None:
                trace("kvm_entry", self, None)
            started = time.monotonic()
            stop = cpu.run(budget)
            ran = cpu.icount - before
            if not cpu.clock.counts_instructions:
                self.timer.measured(ran, time.monotonic() - started)
            if left is not None:
                left -= ran
            if isinstance(stop, Budget):
                continue
            if isinstance(stop, WaitForInterrupt):
                self._wfi_blocked = True
                continue
            assert isinstance(stop, HypTrap)
            self.trap_esr = stop.esr
            self.fault_far = stop.far
            if trace is not None:
                trace("kvm_exit", self, stop)
            ret = handle_trap_exceptions(self, stop)
            if ret <= 0:
                return ret

    def _flush_interrupts(self, budget: int) -> int:
        """Before entering the guest (kvm_timer_sync, vgic_flush_hwstate): the timer outputs
        into the vGIC, the vGIC's signals into the vcpu's virtual IRQ/FIQ inputs (held low
        while a KVM_GUESTDBG_BLOCKIRQ step runs). Returns ``budget`` bounded by the next timer
        deadline."""
        self.timer.sync()
        s = self.cpu.state
        vgic = self.vm.vgic
        if vgic is None or self.debug.blocks_irqs:
            s.virq = s.vfiq = False
        else:
            s.virq, s.vfiq = vgic.lines(self)
        return self.timer.bound(budget)

    def interrupt_pending(self) -> bool:
        """kvm_arch_vcpu_runnable's interrupt test: the vGIC signals the vcpu, masked or not."""
        vgic = self.vm.vgic
        if vgic is None:
            return False
        self.timer.sync()
        return vgic.has_pending(self)

    def _wait(self, deadline: float | None, left: int | None) -> bool:
        """kvm_vcpu_block: sleep until an interrupt is pending (or, powered off, until CPU_ON);
        False when the run's bound ends the block first (a signal, for real KVM).

        An armed timer is a wake-up source: with host time the vcpu sleeps until its deadline
        (or an earlier kick from another thread), with the instruction-count clock the clock
        skips to the deadline. Without one, only another thread can wake the vcpu (an SGI or
        CPU_ON from a running vcpu, or, with a time bound and a vGIC, an SPI that userspace
        raises through ``Vm.irq_line``): it waits for a kick until the run's time bound, if any.
        With an instruction bound (round-robin callers) or nothing that could wake it, the
        bound is reached at once."""
        clock = self.cpu.clock
        while self.powered_off or self._wfi_blocked:
            self._kick.clear()
            fire = None
            if not self.powered_off:
                if self.interrupt_pending():
                    self._wfi_blocked = False
                    return True
                fire = self.timer.next_deadline()
                if fire is not None and clock.counts_instructions:
                    clock.skip_to(fire)
                    continue
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            if fire is not None:
                timer_at = now + clock.seconds_until(fire)
                wake_at: float | None = timer_at if deadline is None else min(deadline, timer_at)
            elif left is not None or not (self.vm.can_wake(self)
                                          or deadline is not None and self.vm.vgic is not None):
                return False
            else:
                wake_at = deadline
            self._kick.wait(None if wake_at is None else max(0.0, wake_at - now))
        return True

    def block_until_interrupt(self) -> None:
        """kvm_vcpu_wfi: the vcpu sleeps until an interrupt is pending for it."""
        self._wfi_blocked = True

    def wake(self) -> None:
        self._wfi_blocked = False
        self._kick.set()

    def kick(self) -> None:
        """kvm_vcpu_kick: something (an interrupt) may concern this vcpu; a blocked vcpu
        re-checks."""
        self._kick.set()

    # -- PC updates (kvm_incr_pc / kvm_skip_instr) -------------------------------------------
    def kvm_incr_pc(self) -> None:
        """Skip the trapped instruction (:func:`kvm_skip_instr`), which clears PSTATE.SS. In
        the v4.15 step model PSTATE.SS is left alone: the step is reported by a synthesised
        exit instead."""
        s = self.cpu.state
        ss = s.ss
        s.pc, pstate = kvm_skip_instr(s.pc, s.pstate, bool(self.trap_esr & ESR_ELx_IL))
        s.ss = ss if self.vm.legacy_single_step else (pstate >> 21) & 1

    def legacy_step_exit(self) -> bool:
        """v4.15 kvm_arm_handle_step_debug: when single-stepping, report the step now with the
        synthesised syndrome ESR_ELx_EC_SOFTSTP_LOW << ESR_ELx_EC_SHIFT."""
        if not (self.vm.legacy_single_step and self.debug.singlestep):
            return False
        run = self.kvm_run
        run.exit_reason = U.KVM_EXIT_DEBUG
        run.debug.arch.hsr = ESR_ELx_EC_SOFTSTP_LOW << ESR_ELx_EC_SHIFT
        run.debug.arch.hsr_high = 0
        self.debug.softstep_reported()  # v4.15 re-armed PSTATE.SS on every entry
        return True

    def guest_pstate(self) -> int:
        return self.cpu.state.pstate

    # -- statistics --------------------------------------------------------------------------
    @property
    def instructions(self) -> int:
        """Instructions this vcpu has executed (armvisor extension, a PMU INST_RETIRED count
        for the VMM: ``--max-insns``, and telling a run bound from a WFI block on EINTR)."""
        return self.cpu.icount

    def stat_exit(self, ec: int) -> None:
        self.stat[EXIT_STAT_KEYS[ec]] += 1
        self.stat["exits"] += 1

    def stat_sysreg(self) -> None:
        self.stat["sysreg_traps"] += 1

    # -- KVM_SET_VCPU_EVENTS ------------------------------------------------------------------
    def set_vcpu_events(self, *, ext_dabt_pending: bool = False, serror_pending: bool = False) -> None:
        """KVM_SET_VCPU_EVENTS (arm64): ``ext_dabt_pending`` answers the last MMIO/NISV exit with
        a synchronous external abort at its address instead of completing it."""
        if serror_pending:
            raise einval("SError injection is not implemented")
        if ext_dabt_pending:
            kvm_inject_abt(self.cpu.state, False, self.fault_far, il=bool(self.trap_esr & ESR_ELx_IL))
            self.mmio_needed = False

    # -- KVM_SET_GUEST_DEBUG -----------------------------------------------------------------
    def set_guest_debug(self, control: int, arch: object | None = None) -> None:
        self.debug.set_guest_debug(control, arch)

    # -- ONE_REG -----------------------------------------------------------------------------
    def get_one_reg(self, reg_id: int) -> int:
        getter, _setter, _size = self._one_reg(reg_id)
        return getter()

    def set_one_reg(self, reg_id: int, value: int) -> None:
        _getter, setter, size = self._one_reg(reg_id)
        if not 0 <= value < (1 << (8 * size)):
            raise einval(f"value 0x{value:x} does not fit register 0x{reg_id:x}")
        setter(value)

    def _one_reg(self, reg_id: int):
        """(getter, setter, size) of a register id, looked up once per id (a debugger reads
        every register at every stop)."""
        found = self._one_regs.get(reg_id)
        if found is None:
            found = self._one_regs[reg_id] = self._lookup_one_reg(reg_id)
        return found

    def _lookup_one_reg(self, reg_id: int):
        if reg_id & U.KVM_REG_ARCH_MASK != U.KVM_REG_ARM64:
            raise einval(f"register id 0x{reg_id:x} is not an arm64 id")
        size = 1 << ((reg_id & U.KVM_REG_SIZE_MASK) >> U.KVM_REG_SIZE_SHIFT)
        coproc = reg_id & U.KVM_REG_ARM_COPROC_MASK
        if coproc == U.KVM_REG_ARM_CORE:
            return self._core_reg(reg_id & 0xFFFF, size, reg_id)
        if coproc == U.KVM_REG_ARM64_SYSREG and size == 8:
            return self._sys_reg(reg_id & U.KVM_REG_ARM64_SYSREG_MASK, reg_id)
        if coproc == U.KVM_REG_ARM_FW and reg_id & 0xFFFF == 0 and size == 8:
            return self._get_psci_version, self._set_psci_version, 8
        raise enoent(f"no register 0x{reg_id:x}")

    def _core_reg(self, index: int, size: int, reg_id: int):
        s = self.cpu.state
        x = s.x
        if index < 0x3E and index % 2 == 0 and size == 8:
            n = index // 2
            return (lambda: x[n]), (lambda v: x.__setitem__(n, v)), 8
        simple = {
            U.KVM_REG_ARM_CORE_SP: (lambda: s.get_sp_el(0), lambda v: s.set_sp_el(0, v)),
            U.KVM_REG_ARM_CORE_PC: (lambda: s.pc, lambda v: setattr(s, "pc", v)),
            U.KVM_REG_ARM_CORE_PSTATE: (lambda: s.pstate, self._set_pstate),
            U.KVM_REG_ARM_CORE_SP_EL1: (lambda: s.get_sp_el(1), lambda v: s.set_sp_el(1, v)),
            U.KVM_REG_ARM_CORE_ELR_EL1: (lambda: s.sr.get(ELR_EL1, 0), lambda v: s.sr.__setitem__(ELR_EL1, v)),
            U.KVM_REG_ARM_CORE_SPSR: (lambda: s.sr.get(SPSR_EL1, 0), lambda v: s.sr.__setitem__(SPSR_EL1, v)),
        }
        for k in range(1, U.KVM_NR_SPSR):
            simple[U.KVM_REG_ARM_CORE_SPSR + 2 * k] = (
                lambda k=k: self.spsr_aarch32[k - 1], lambda v, k=k: self.spsr_aarch32.__setitem__(k - 1, v))
        if index in simple:
            if size != 8:
                raise einval(f"register 0x{reg_id:x} is 64-bit")
            getter, setter = simple[index]
            return getter, setter, 8
        if U.KVM_REG_ARM_CORE_V0 <= index < U.KVM_REG_ARM_CORE_FPSR:
            off = index - U.KVM_REG_ARM_CORE_V0
            if size != 16 or off % 4:
                raise einval(f"register 0x{reg_id:x}: V registers are 128-bit")
            n = off // 4
            return (lambda: self.fp_regs[n]), (lambda v: self.fp_regs.__setitem__(n, v)), 16
        if index in (U.KVM_REG_ARM_CORE_FPSR, U.KVM_REG_ARM_CORE_FPCR):
            if size != 4:
                raise einval(f"register 0x{reg_id:x} is 32-bit")
            name = "fpsr" if index == U.KVM_REG_ARM_CORE_FPSR else "fpcr"
            return (lambda: getattr(self, name)), (lambda v: setattr(self, name, v)), 4
        if index < 0xD6 and index % 2 == 0:
            raise einval(f"register 0x{reg_id:x} has the wrong size")
        raise enoent(f"no core register at index 0x{index:x}")

    def _set_pstate(self, value: int) -> None:
        """validate_core_offset/set_core_reg: only EL0t/EL1t/EL1h AArch64 modes."""
        mode = value & (PSR_MODE32_BIT | PSR_MODE_MASK)
        if mode not in VALID_PSTATE_MODES:
            raise einval(f"PSTATE mode 0x{mode:x} is not valid for this vcpu")
        self.cpu.state.pstate = value

    def _sys_reg(self, enc: int, reg_id: int):
        if enc in TIMER_ONE_REGS:
            return TIMER_ONE_REGS[enc](self)
        if enc not in SYSREGS:
            raise enoent(f"no system register 0x{reg_id:x}")
        desc = SYSREGS[enc]
        sr = self.cpu.state.sr
        if desc.trap in ID_REG_TRAPS:
            def set_id(v: int) -> None:
                if v != sanitised_id_reg(self, enc):
                    raise einval(f"{desc.name} is immutable on armvisor")
            return (lambda: sanitised_id_reg(self, enc)), set_id, 8
        if desc.trap in ("TDA", "TDOSA"):
            return (lambda: self.debug.guest_read(enc)), (lambda v: self.debug.guest_write(enc, v)), 8
        return (lambda: sr.get(enc, 0)), (lambda v: sr.__setitem__(enc, v)), 8

    def _timer_cnt(self):
        """KVM_REG_ARM_TIMER_CNT: the virtual count; writing it sets CNTVOFF_EL2."""
        s = self.cpu.state

        def get() -> int:
            return (self.cpu.clock.count() - s.cntvoff_el2) & MASK64

        def put(value: int) -> None:
            s.cntvoff_el2 = (self.cpu.clock.count() - value) & MASK64

        return get, put, 8

    def _timer_ctl(self):
        """KVM_REG_ARM_TIMER_CTL: CNTV_CTL_EL0 with ISTATUS computed, as read_timer_ctl() does;
        ISTATUS is read-only, so a write keeps ENABLE and IMASK only."""
        s = self.cpu.state

        def get() -> int:
            value = s.sr[CNTV_CTL_EL0]
            if value & CNT_CTL_ENABLE and condition_met(s, VIRTUAL_TIMER, self.cpu.clock.count()):
                value |= CNT_CTL_ISTATUS
            return value

        return get, (lambda v: s.sr.__setitem__(CNTV_CTL_EL0, v & (CNT_CTL_ENABLE | CNT_CTL_IMASK))), 8

    def _timer_storage(self, enc: int):
        sr = self.cpu.state.sr
        return (lambda: sr[enc]), (lambda v: sr.__setitem__(enc, v)), 8

    def _get_psci_version(self) -> int:
        return self.psci_version

    def _set_psci_version(self, value: int) -> None:
        allowed = {PSCI_VERSION_0_2, PSCI_VERSION_1_0, PSCI_VERSION_1_1} if self.psci_version else {0}
        if value not in allowed:
            raise einval(f"PSCI version 0x{value:x} not supported")
        self.psci_version = value

    def __repr__(self) -> str:
        return f"Vcpu(id={self.vcpu_id}, pc=0x{self.cpu.state.pc:x})"

