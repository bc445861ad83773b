"""The architected timer as KVM emulates it (arch/arm64/kvm/arch_timer.c): the EL1 virtual and
physical timers of each vcpu drive level-sensitive PPIs (27 and 30) of the in-kernel vGIC.

The CPU keeps the timer registers and reads the VM's clock (:mod:`armvisor.cpu.timer`); here
the run loop re-evaluates the outputs between chunks (``kvm_timer_sync``) and bounds each chunk
so that no deadline is overshot: exactly for the instruction-count clock, by an estimate of
the guest's instruction rate for host time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from armvisor.cpu.timer import (
    PHYSICAL_TIMER,
    TIMERS,
    VIRTUAL_TIMER,
    HostClock,
    armed,
    condition_met,
    deadline,
)
from armvisor.hyp.vgic import INTID_PTIMER, INTID_VTIMER

if TYPE_CHECKING:
    from armvisor.hyp.vcpu import Vcpu

TIMER_PPIS = ((VIRTUAL_TIMER, INTID_VTIMER), (PHYSICAL_TIMER, INTID_PTIMER))
MIN_HOST_CHUNK = 64  # instructions: host-time chunks never shrink below this


class ArchTimer:
    """The two EL1 timers of one vcpu."""

    def __init__(self, vcpu: "Vcpu") -> None:
        self.vcpu = vcpu
        self.insns_per_second = 1e6  # refined from each chunk under the host clock
        self._quiet_vgic: object | None = None  # the vGIC both outputs were last driven low into

    def _unarmed(self) -> bool:
        s = self.vcpu.cpu.state
        return not armed(s, VIRTUAL_TIMER) and not armed(s, PHYSICAL_TIMER)

    def sync(self) -> None:
        """kvm_timer_sync/kvm_timer_update_irq: the timer outputs into the vGIC. The clock is
        read only when a timer is armed: an unarmed timer's output is low at any count, and is
        not driven again while it stays low (every guest entry syncs)."""
        vgic = self.vcpu.vm.vgic
        if vgic is None or vgic is self._quiet_vgic and self._unarmed():
            return
        s = self.vcpu.cpu.state
        now: int | None = None
        quiet = True
        for timer, ppi in TIMER_PPIS:
            level = False
            if armed(s, timer):
                if now is None:
                    now = self.vcpu.cpu.clock.count()
                level = condition_met(s, timer, now)
            vgic.set_private_level(self.vcpu, ppi, level)
            quiet = quiet and not level
        self._quiet_vgic = vgic if quiet else None

    def next_deadline(self) -> int | None:
        """The physical count at which the next timer output that is not yet asserted will
        assert, or None (no armed timer, or no vGIC to deliver it)."""
        if self.vcpu.vm.vgic is None or self._unarmed():
            return None
        s = self.vcpu.cpu.state
        deadlines = [d for d in (deadline(s, t) for t in TIMERS) if d is not None]
        if not deadlines:
            return None
        now = self.vcpu.cpu.clock.count()
        return min((d for d in deadlines if d > now), default=None)

    def bound(self, budget: int) -> int:
        """The chunk size that ends at the next deadline (kvm_timer_schedule's hrtimer)."""
        when = self.next_deadline()
        if when is None:
            return budget
        clock = self.vcpu.cpu.clock
        if isinstance(clock, HostClock):
            estimate = int(clock.seconds_until(when) * self.insns_per_second)
            return max(min(budget, estimate), min(budget, MIN_HOST_CHUNK))
        return max(1, min(budget, clock.instructions_until(when)))

    def measured(self, insns: int, seconds: float) -> None:
        """Refine the instruction-rate estimate from a chunk that ran ``insns`` in ``seconds``."""
        if insns >= MIN_HOST_CHUNK and seconds > 0:
            self.insns_per_second = 0.5 * self.insns_per_second + 0.5 * insns / seconds
