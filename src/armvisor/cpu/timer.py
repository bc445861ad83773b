"""The generic timer as one PE sees it (Arm ARM D11): the system counter's clock and the
EL1 physical and virtual timers (CNTP_*, CNTV_*), whose registers live in ``CpuState.sr``.

Two clocks drive the system counter (CNTPCT_EL0), shared by the PEs of a machine:

* :class:`HostClock` (KVM's behaviour): the count follows host time since the clock was made,
  ``(monotonic seconds) * CNTFRQ_HZ``.
* :class:`InstructionClock` (``icount``): one tick per instruction executed (or exception
  taken) by any PE sharing the clock, plus time skipped while every waiter idles. At
  CNTFRQ_EL0 = 62.5 MHz a guest sees 62.5 million instructions per second. A run is then
  deterministic: the count at every instruction is a function of the instruction stream.

CNTVCT_EL0 = CNTPCT_EL0 - CNTVOFF_EL2. A timer's condition is met when its CVAL <= its
counter (physical or virtual); CNTx_CTL.ISTATUS shows it while ENABLE is set, and the timer's
output (an interrupt request, which the PE's owner routes to the GIC) is asserted when
ENABLE=1, IMASK=0 and the condition is met (Arm ARM D11.2.4).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Union

from armvisor.arch.sysregs import (
    CNTFRQ_EL0,
    CNTP_CTL_EL0,
    CNTP_CVAL_EL0,
    CNTV_CTL_EL0,
    CNTV_CVAL_EL0,
    SYSREGS,
)
from armvisor.cpu.state import MASK64, CpuState

CNTFRQ_HZ = SYSREGS[CNTFRQ_EL0].reset  # the frequency CNTFRQ_EL0 reports (62.5 MHz)
CNT_CTL_ENABLE = 1 << 0
CNT_CTL_IMASK = 1 << 1
CNT_CTL_ISTATUS = 1 << 2
TICKS_PER_INSTRUCTION = 1


class HostClock:
    """The counter follows host time (like KVM: the VM's counter is the host's)."""

    counts_instructions = False

    def __init__(self) -> None:
        self._start = time.monotonic()

    def count(self, executed: int = 0) -> int:
        """The counter now (``executed`` is ignored)."""
        return int((time.monotonic() - self._start) * CNTFRQ_HZ)

    def advance(self, executed: int) -> None:
        """Nothing: host time moves by itself."""

    def seconds_until(self, count: int) -> float:
        return max(0.0, (count - self.count()) / CNTFRQ_HZ)

    def __repr__(self) -> str:
        return "HostClock()"


class InstructionClock:
    """The counter advances by TICKS_PER_INSTRUCTION per instruction executed (``icount``)."""

    counts_instructions = True

    def __init__(self) -> None:
        self.ticks = 0  # the count when the running PE's current run began

    def count(self, executed: int = 0) -> int:
        """The counter after ``executed`` instructions of the current run."""
        return self.ticks + executed * TICKS_PER_INSTRUCTION

    def advance(self, executed: int) -> None:
        """A run executed ``executed`` instructions."""
        self.ticks += executed * TICKS_PER_INSTRUCTION

    def skip_to(self, count: int) -> None:
        """Idle time: jump forward to ``count`` (never backwards)."""
        self.ticks = max(self.ticks, count)

    def instructions_until(self, count: int) -> int:
        return max(0, -(-(count - self.ticks) // TICKS_PER_INSTRUCTION))

    def __repr__(self) -> str:
        return f"InstructionClock(ticks={self.ticks})"


Clock = Union[HostClock, InstructionClock]


@dataclass(frozen=True)
class TimerRegs:
    """One EL1 timer: its control and compare-value registers and which counter it compares."""

    name: str
    ctl: int
    cval: int
    virtual: bool


PHYSICAL_TIMER = TimerRegs("ptimer", CNTP_CTL_EL0, CNTP_CVAL_EL0, False)
VIRTUAL_TIMER = TimerRegs("vtimer", CNTV_CTL_EL0, CNTV_CVAL_EL0, True)
TIMERS = (VIRTUAL_TIMER, PHYSICAL_TIMER)


def timer_count(s: CpuState, timer: TimerRegs, physical: int) -> int:
    """The counter ``timer`` compares against, given the physical count."""
    return (physical - s.cntvoff_el2) & MASK64 if timer.virtual else physical


def condition_met(s: CpuState, timer: TimerRegs, physical: int) -> bool:
    return timer_count(s, timer, physical) >= s.sr[timer.cval]


def armed(s: CpuState, timer: TimerRegs) -> bool:
    """Whether the timer's output can assert: ENABLE=1 and IMASK=0. The output (its interrupt
    request) is asserted while the timer is armed and its condition is met."""
    return s.sr[timer.ctl] & (CNT_CTL_ENABLE | CNT_CTL_IMASK) == CNT_CTL_ENABLE


def deadline(s: CpuState, timer: TimerRegs) -> int | None:
    """The physical count at which an enabled, unmasked timer's output will assert (None for
    a timer that cannot fire)."""
    if not armed(s, timer):
        return None
    cval = s.sr[timer.cval]
    return (cval + s.cntvoff_el2) & MASK64 if timer.virtual else cval
