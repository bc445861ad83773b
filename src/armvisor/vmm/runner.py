"""The run loop, kvmtool style: run each vcpu, serve what comes back to userspace, decide when
the guest is finished.

* SMP in one process: vcpus run round-robin, each ``vcpu.run(max_insns=SLICE)``; EINTR ends a
  slice. A powered-off vcpu is skipped until a PSCI CPU_ON powers it on.
* Idle: ``KVM_RUN`` ends with EINTR *before* its instruction bound only when the vcpu blocked
  (WFI or CPU_SUSPEND, or it powered itself off): the WFI has then completed, as after a signal
  on real KVM, and the vcpu is *idle* for this round. When every powered-on vcpu is idle (or
  none is on), the guest waits for an interrupt. If nothing can ever provide one -- no vcpu
  left, or the hyp reports no wake-up source (``Vm.can_wake``: vGIC, timers, other vcpus) and
  no device can raise one by itself (UART input still open, an armed RTC alarm) -- the guest is
  hung: status 3 at once. Otherwise the loop keeps polling, sleeping between rounds; if the
  ``--timeout`` ends the wait, that is a hang too (status 3), not a timeout.
* Exception loop: after each slice the EL1 exception registers are sampled; a synchronous
  exception whose ELR_EL1 lies inside the very vector entry it was taken to, twice in a row with
  the same ESR/ELR/FAR, can never make progress (the handler faults before doing anything --
  e.g. VBAR_EL1 unset or pointing at zeros): status 3, naming ESR_EL1/ELR_EL1/FAR_EL1.
* Limits: ``--max-insns`` (over all vcpus) and ``--timeout`` end the run with status 4; Ctrl-C
  (a flag set by the SIGINT handler, checked between slices) with 130 and each vcpu's PC.
* ``--trace exits`` prints one line per exit to EL2 on stderr (the hyp's kvm_exit tracepoint,
  completed with the userspace exit reason when there is one); ``--trace insn`` single-steps
  the guest with KVM_GUESTDBG_SINGLESTEP and disassembles each instruction with Capstone;
  ``--stats`` prints a kvm_stat-like table at the end.
"""

from __future__ import annotations

import errno
import sys
import time
from collections import Counter
from dataclasses import dataclass
from types import FrameType
from typing import TextIO

from armvisor.arch import esr as esr_names
from armvisor.arch.esr import ESR_ELx_EC_SOFTSTP_LOW, esr_ec
from armvisor.arch.sysreg_encoding import sys_reg_fields
from armvisor.arch.sysregs import ESR_EL1, FAR_EL1, VBAR_EL1
from armvisor.arch.vectors import VECTOR_ENTRY_SIZE, VECTOR_SYNC, vector_group
from armvisor.cpu.stops import UnsupportedFeature
from armvisor.hyp.mmio import fault_ipa
from armvisor.kvm import (
    KVM_EXIT_DEBUG,
    KVM_EXIT_INTR,
    KVM_EXIT_MMIO,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
    KVM_REG_ARM64_ELR_EL1,
    KVM_REG_ARM64_PC,
    KVM_REG_ARM_CORE_SPSR,
    KvmError,
    KvmRun,
    Vcpu,
    arm64_core_reg,
    arm64_sys_reg,
)
from armvisor.vmm.machine import ExitStatus, GuestStop, VirtMachine, exit_reason_name

SLICE = 20_000  # instructions per vcpu turn: the granularity of SMP, timeouts and Ctrl-C
IDLE_SLEEP = 0.001  # seconds between rounds while every vcpu waits for an interrupt
ESR_EL1_REG = arm64_sys_reg(*sys_reg_fields(ESR_EL1))
FAR_EL1_REG = arm64_sys_reg(*sys_reg_fields(FAR_EL1))
VBAR_EL1_REG = arm64_sys_reg(*sys_reg_fields(VBAR_EL1))
SPSR_EL1_REG = arm64_core_reg(KVM_REG_ARM_CORE_SPSR)

EC_NAMES = {value: name.removeprefix("ESR_ELx_EC_") for name, value in vars(esr_names).items()
            if name.startswith("ESR_ELx_EC_") and name not in ("ESR_ELx_EC_SHIFT", "ESR_ELx_EC_MASK",
                                                                "ESR_ELx_EC_MAX")}
ABORT_ECS = {esr_names.ESR_ELx_EC_IABT_LOW, esr_names.ESR_ELx_EC_DABT_LOW}


def ec_name(ec: int) -> str:
    """``ESR_ELx_EC_*`` name of an exception class, without the prefix."""
    return EC_NAMES.get(ec, "reserved")


@dataclass(frozen=True)
class ExceptionRegisters:
    """What the guest's last EL1 exception left behind, read with ONE_REG."""

    esr: int
    elr: int
    far: int
    spsr: int
    vbar: int

    @classmethod
    def read(cls, vcpu: Vcpu) -> ExceptionRegisters:
        get = vcpu.get_one_reg
        return cls(get(ESR_EL1_REG), get(KVM_REG_ARM64_ELR_EL1), get(FAR_EL1_REG), get(SPSR_EL1_REG),
                   get(VBAR_EL1_REG))

    @property
    def sync_vector(self) -> int:
        """The synchronous vector entry an exception from SPSR_EL1's mode was taken to."""
        return self.vbar + vector_group(self.spsr) + VECTOR_SYNC

    @property
    def faulted_in_own_vector(self) -> bool:
        return self.sync_vector <= self.elr < self.sync_vector + VECTOR_ENTRY_SIZE


class Runner:
    """Runs a :class:`VirtMachine` to its end; :meth:`run` returns the :class:`GuestStop`."""

    def __init__(self, machine: VirtMachine, *, max_insns: int | None = None, timeout: float | None = None,
                 trace: str | None = None, stats: bool = False, err: TextIO | None = None) -> None:
        self.machine = machine
        self.vcpus = machine.vcpus
        self.max_insns = max_insns
        self.timeout = timeout
        self.stats = stats
        self.err = err if err is not None else sys.stderr
        self.stop_requested = False
        self.exit_counts: dict[int, Counter[int]] = {v.vcpu_id: Counter() for v in self.vcpus}
        self.last_exception: dict[int, ExceptionRegisters | None] = {v.vcpu_id: None for v in self.vcpus}
        self.pending_trap: dict[int, object] = {}
        self.insn_tracer = InsnTracer(machine, self.err) if trace == "insn" else None
        if trace == "exits":
            machine.vm.trace = self._trace_hook
        if self.insn_tracer is not None:
            for vcpu in self.vcpus:
                vcpu.set_guest_debug(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP)

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        """Ask the loop to stop after the current slice (the SIGINT handler)."""
        self.stop_requested = True

    def run(self) -> GuestStop:
        start = time.monotonic()
        first = sum(v.instructions for v in self.vcpus)
        try:
            return self._run(start, first)
        finally:
            self.machine.flush()
            if self.stats:
                self._print_stats(sum(v.instructions for v in self.vcpus) - first, time.monotonic() - start)

    # -- the loop ----------------------------------------------------------------------------
    def _run(self, start: float, first_insn: int) -> GuestStop:
        deadline = None if self.timeout is None else start + self.timeout
        while True:
            idle: set[int] = set()
            for vcpu in self.vcpus:
                if vcpu.powered_off:
                    continue
                executed = sum(v.instructions for v in self.vcpus) - first_insn
                budget = SLICE if self.max_insns is None else min(SLICE, self.max_insns - executed)
                if budget <= 0:
                    return GuestStop(ExitStatus.TIMEOUT, f"timeout: {self.max_insns} instructions executed, "
                                                         f"guest stopped at {self.where()}")
                outcome = self._slice(vcpu, budget)
                if isinstance(outcome, GuestStop):
                    return outcome
                if outcome:
                    idle.add(vcpu.vcpu_id)
                if self.stop_requested:
                    return GuestStop(ExitStatus.INTERRUPTED, f"interrupted: guest stopped at {self.where()}")
            self.machine.poll_devices()
            active = [v for v in self.vcpus if not v.powered_off]
            waiting = all(v.vcpu_id in idle for v in active)
            if waiting and not self._wake_possible(active):
                return self._hung()
            if deadline is not None and time.monotonic() >= deadline:
                if waiting:
                    return self._hung(f" for {self.timeout:g} s")
                return GuestStop(ExitStatus.TIMEOUT, f"timeout: {self.timeout:g} s elapsed, "
                                                     f"guest stopped at {self.where()}")
            if waiting:
                time.sleep(IDLE_SLEEP)

    def _slice(self, vcpu: Vcpu, budget: int) -> GuestStop | bool:
        """Run ``vcpu`` for up to ``budget`` instructions, serving its exits; returns whether it
        ended idle (blocked before the bound), or the end of the guest."""
        left = budget
        while left > 0:
            if self.insn_tracer is not None:
                self.insn_tracer.before_run(vcpu)
            before = vcpu.instructions
            try:
                run = vcpu.run(max_insns=left)
            except KvmError as err:
                if err.errno != errno.EINTR:
                    return self._kvm_failure(vcpu, err)
                self._count_exit(vcpu, KVM_EXIT_INTR, None)
                used = vcpu.instructions - before
                return used < left or self._exception_loop(vcpu)
            except (UnsupportedFeature, NotImplementedError) as err:
                return GuestStop(ExitStatus.GUEST_CRASH, f"guest crash: unsupported feature at "
                                                         f"{self.where([vcpu])}: {err}")
            left -= vcpu.instructions - before
            self._count_exit(vcpu, run.exit_reason, run)
            stop = self._userspace_exit(vcpu, run)
            if stop is not None:
                return stop
        return self._exception_loop(vcpu)

    def _userspace_exit(self, vcpu: Vcpu, run: KvmRun) -> GuestStop | None:
        if self.insn_tracer is not None and run.exit_reason == KVM_EXIT_DEBUG \
                and esr_ec(run.debug.arch.hsr) == ESR_ELx_EC_SOFTSTP_LOW:
            self.insn_tracer.stepped(vcpu)
            return None
        return self.machine.handle_exit(vcpu, run)

    def _kvm_failure(self, vcpu: Vcpu, err: KvmError) -> GuestStop:
        if err.errno == errno.ENOSYS:  # ISV=0 abort without KVM_CAP_ARM_NISV_TO_USER
            return GuestStop(ExitStatus.GUEST_CRASH, f"guest crash: KVM unable to emulate faulting "
                                                     f"instruction at {self.where([vcpu])}")
        return GuestStop(ExitStatus.GUEST_CRASH, f"guest crash: KVM_RUN failed on vcpu {vcpu.vcpu_id}: {err}")

    # -- hangs and exception loops -----------------------------------------------------------
    def _wake_possible(self, active: list[Vcpu]) -> bool:
        return self.machine.device_wake_possible or any(self.machine.vm.can_wake(v) for v in active)

    def _hung(self, waited: str = "") -> GuestStop:
        if all(v.powered_off for v in self.vcpus):
            return GuestStop(ExitStatus.GUEST_CRASH, "guest crash: every vcpu is powered off (PSCI CPU_OFF) "
                                                     "and nothing can power one on")
        return GuestStop(ExitStatus.GUEST_CRASH, f"guest halted in WFI with no interrupt source{waited} "
                                                 f"({self.where()})")

    def _exception_loop(self, vcpu: Vcpu) -> GuestStop | bool:
        """False, or the crash when the vcpu is stuck re-taking one exception (module doc)."""
        regs = ExceptionRegisters.read(vcpu)
        previous = self.last_exception[vcpu.vcpu_id]
        self.last_exception[vcpu.vcpu_id] = regs
        if regs != previous or not regs.faulted_in_own_vector:
            return False
        ec = esr_ec(regs.esr)
        return GuestStop(ExitStatus.GUEST_CRASH,
                         f"guest crash: exception loop on vcpu {vcpu.vcpu_id}: the synchronous exception "
                         f"handler at 0x{regs.sync_vector:x} faults on entry (EC 0x{ec:02x} {ec_name(ec)}, "
                         f"ESR_EL1 0x{regs.esr:x}, ELR_EL1 0x{regs.elr:x}, FAR_EL1 0x{regs.far:x})")

    def where(self, vcpus: list[Vcpu] | None = None) -> str:
        """``PC 0x...`` for one vcpu; ``vcpu0 PC 0x..., vcpu1 off`` for several."""
        vcpus = self.vcpus if vcpus is None else vcpus
        if len(self.vcpus) == 1:
            return f"PC 0x{vcpus[0].get_one_reg(KVM_REG_ARM64_PC):x}"
        return ", ".join(f"vcpu{v.vcpu_id} " + ("powered off" if v.powered_off
                                                 else f"PC 0x{v.get_one_reg(KVM_REG_ARM64_PC):x}")
                         for v in vcpus)

    # -- trace and statistics ----------------------------------------------------------------
    def _trace_hook(self, event: str, vcpu: Vcpu, detail: object) -> None:
        """The hyp's kvm_entry/kvm_exit tracepoints: an exit handled in the hyp is printed at
        the next entry; one that reaches userspace when ``run()`` returns."""
        trap = self.pending_trap.pop(vcpu.vcpu_id, None)
        if trap is not None:
            self._print_exit(vcpu, "hyp", trap, "")
        if event == "kvm_exit":
            self.pending_trap[vcpu.vcpu_id] = detail

    def _count_exit(self, vcpu: Vcpu, reason: int, run: KvmRun | None) -> None:
        self.exit_counts[vcpu.vcpu_id][reason] += 1
        if self.machine.vm.trace is not None:
            trap = self.pending_trap.pop(vcpu.vcpu_id, None)
            mmio = run.mmio if run is not None and reason == KVM_EXIT_MMIO else None
            access = "" if mmio is None else \
                f" {'write' if mmio.is_write else 'read'} len {mmio.len} at 0x{mmio.phys_addr:x}"
            self._print_exit(vcpu, exit_reason_name(reason), trap, access)

    def _print_exit(self, vcpu: Vcpu, reason: str, trap: object, access: str) -> None:
        if trap is None:
            where = f"PC 0x{vcpu.get_one_reg(KVM_REG_ARM64_PC):x}"
        else:
            ec = esr_ec(trap.esr)
            where = f"EC 0x{ec:02x} {ec_name(ec)} PC 0x{trap.elr:x}"
            if ec in ABORT_ECS and not access:
                access = f" address 0x{fault_ipa(trap):x}"
        print(f"exit vcpu{vcpu.vcpu_id} {reason} {where}{access}", file=self.err)

    def _print_stats(self, instructions: int, seconds: float) -> None:
        rate = instructions / seconds / 1e6 if seconds > 0 else 0.0
        ids = [v.vcpu_id for v in self.vcpus]
        print(f"armvisor: statistics: {instructions} instructions in {seconds:.2f} s ({rate:.2f} MIPS)",
              file=self.err)
        exits: dict[str, dict[int, int]] = {}
        for vcpu in self.vcpus:
            for key, count in vcpu.stat.items():
                if key.startswith("exit_ec_"):
                    exits.setdefault(f"kvm_exit({ec_name(int(key.removeprefix('exit_ec_'), 16))})", {})[
                        vcpu.vcpu_id] = count
        userspace = {f"kvm_userspace_exit({exit_reason_name(reason)})":
                     {vid: counts[reason] for vid, counts in self.exit_counts.items()}
                     for reason in sorted({r for c in self.exit_counts.values() for r in c})}
        header = f" {'Event':<36}{'Total':>10}{'%Total':>8}" + "".join(f"{'vcpu' + str(i):>10}" for i in ids)
        print(header, file=self.err)
        for table in (exits, userspace):
            total = sum(sum(row.values()) for row in table.values()) or 1
            for event, row in sorted(table.items(), key=lambda item: -sum(item[1].values())):
                count = sum(row.values())
                print(f" {event:<36}{count:>10}{100 * count / total:>8.1f}"
                      + "".join(f"{row.get(i, 0):>10}" for i in ids), file=self.err)


class InsnTracer:
    """``--trace insn``: each instruction a vcpu is about to execute, disassembled by Capstone."""

    def __init__(self, machine: VirtMachine, err: TextIO) -> None:
        import capstone

        self.machine = machine
        self.err = err
        self.disassembler = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        self.printed: set[int] = set()  # vcpus whose current instruction is already printed

    def before_run(self, vcpu: Vcpu) -> None:
        if vcpu.vcpu_id in self.printed:
            return  # re-entering after an MMIO exit: the same instruction
        self.printed.add(vcpu.vcpu_id)
        pc = vcpu.get_one_reg(KVM_REG_ARM64_PC)
        try:
            word = self.machine.read_memory(pc, 4)
        except ValueError:
            print(f"insn vcpu{vcpu.vcpu_id} 0x{pc:016x}: (not in RAM)", file=self.err)
            return
        text = next((f"{i.mnemonic} {i.op_str}".rstrip() for i in self.disassembler.disasm(word, pc)),
                    ".inst (undefined)")
        print(f"insn vcpu{vcpu.vcpu_id} 0x{pc:016x}: {int.from_bytes(word, 'little'):08x}  {text}",
              file=self.err)

    def stepped(self, vcpu: Vcpu) -> None:
        self.printed.discard(vcpu.vcpu_id)

