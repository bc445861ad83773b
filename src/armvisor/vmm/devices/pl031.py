"""ARM PrimeCell Real Time Clock (PL031), ARM DDI0224, as QEMU's ``hw/rtc/pl031.c`` models it.

RTCDR is a 32-bit seconds counter running with host real time: seconds since the Unix epoch
plus an offset that a write to RTCLR sets (the counter then continues from the loaded value).
RTCMR arms the match interrupt: when RTCDR reaches RTCMR, RTCRIS is raised (the TRM's
RTCINTR). The match is computed as a host deadline when RTCMR or RTCLR is written, as
``pl031_set_alarm`` does; it is taken when :meth:`Pl031.poll` runs after the deadline (the run
loop calls it; RTCRIS/RTCMIS reads call it too), and at once when RTCMR equals the current
count.

Where QEMU and the TRM differ:

* RTCCR: the TRM resets RTCStart to 0 (counter stopped until software sets it). On ``virt``
  the RTC is started by the board: QEMU reads RTCCR as 1 and ignores writes; so do we.
* RTCICR: writing 1 to bit 0 clears the interrupt (the TRM); QEMU clears on any write.
* Reset keeps the counter running with its offset (a real-time clock keeps time across a
  system reset; QEMU's pl031 has no reset handler) and resets RTCMR, RTCLR, RTCIMSC, RTCRIS.
* ID registers: QEMU's ``pl031_id`` (RTCPeriphID2 = 0x14: revision 1, designer ARM).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from armvisor.vmm.devices.base import (
    Access,
    PrimeCellDevice,
    PrimeCellState,
    Register,
    primecell_id_registers,
    primecell_interrupt_registers,
    stored_register,
)

PL031_BASE = 0x0901_0000
PL031_SPI = 2  # QEMU's VIRT_RTC irq: GIC INTID 34
PL031_PERIPH_ID = bytes((0x31, 0x10, 0x14, 0x00))

RTC_COUNTER_MASK = 0xFFFF_FFFF
RTCCR_START = 1 << 0  # RTCCR bit 0, read as set (see module docstring)
RTC_INT_MATCH = 1 << 0  # RTCRIS/RTCMIS/RTCIMSC/RTCICR bit 0 (3.3.5-3.3.8)


@dataclass
class Pl031State(PrimeCellState):
    """The RTC's registers; RTCDR = floor(host seconds) + ``tick_offset`` (mod 2**32)."""

    mr: int = 0
    lr: int = 0
    tick_offset: int = 0
    alarm_at: float | None = None  # host time at which RTCDR reaches RTCMR


class Pl031(PrimeCellDevice):
    """PL031 RTC at ``base``; ``clock`` gives host seconds since the epoch (``time.time``)."""

    name = "pl031"
    compatible = "arm,pl031"
    clock_names = ("apb_pclk",)
    interrupt_mask = RTC_INT_MATCH
    state_type = Pl031State
    state: Pl031State

    def __init__(
        self,
        base: int = PL031_BASE,
        irq: Callable[[bool], None] | None = None,
        spi: int = PL031_SPI,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(base, spi, irq)
        self.clock = clock

    def reset(self) -> None:
        tick_offset = self.state.tick_offset
        super().reset()
        self.state.tick_offset = tick_offset

    def next_deadline(self) -> float | None:
        """Host time (``clock`` units) when the armed match fires, for the run loop."""
        return self.state.alarm_at

    def poll(self) -> None:
        """Raise the match interrupt if its deadline has passed."""
        alarm_at = self.state.alarm_at
        if alarm_at is not None and self.clock() >= alarm_at:
            self.state.alarm_at = None
            self.raise_interrupt(RTC_INT_MATCH)

    def count(self, now: float | None = None) -> int:
        """RTCDR at host time ``now`` (default: the clock's current time)."""
        seconds = math.floor(self.clock() if now is None else now)
        return (seconds + self.state.tick_offset) & RTC_COUNTER_MASK

    # -- register handlers -------------------------------------------------------------------
    def _read_dr(self) -> int:
        return self.count()

    def _write_mr(self, value: int) -> None:
        self.state.mr = value
        self._set_alarm()

    def _write_lr(self, value: int) -> None:
        self.state.tick_offset = (self.state.tick_offset + value - self.count()) & RTC_COUNTER_MASK
        self.state.lr = value
        self._set_alarm()

    def _read_cr(self) -> int:
        return RTCCR_START

    def _write_cr(self, _value: int) -> None:
        """Writes are ignored: the RTC on ``virt`` is always started."""

    def _set_alarm(self) -> None:
        """Arm the match for the second boundary at which RTCDR becomes RTCMR."""
        now = self.clock()
        ticks = (self.state.mr - self.count(now)) & RTC_COUNTER_MASK
        self.state.alarm_at = math.floor(now) + ticks if ticks else None
        if not ticks:
            self.raise_interrupt(RTC_INT_MATCH)

    registers = {
        0x000: Register("RTCDR", Access.RO, None, _read_dr),
        0x004: stored_register("RTCMR", "mr", RTC_COUNTER_MASK, 0, _write_mr),
        0x008: stored_register("RTCLR", "lr", RTC_COUNTER_MASK, 0, _write_lr),
        0x00C: Register("RTCCR", Access.RW, RTCCR_START, _read_cr, _write_cr),
        **primecell_interrupt_registers("RTC", 0x010),
        **primecell_id_registers("RTC", PL031_PERIPH_ID),
    }
