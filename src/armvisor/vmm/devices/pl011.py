"""ARM PrimeCell UART (PL011), ARM DDI0183 (r1p5 TRM), as QEMU's ``hw/char/pl011.c`` models it.

Behaviour and where it follows QEMU rather than silicon:

* TX: a write to UARTDR sends the byte at once (the 16-entry TX FIFO never fills, UARTFR
  reads TXFE=1, TXFF=0, BUSY=0) and raises TXRIS, as QEMU does; the enable bits in UARTCR
  are not checked (QEMU's "??? Check if transmitter is enabled"), so guests that write UARTDR
  without initialising the UART work as on QEMU. The output stream is flushed on ``\\n`` and
  on :meth:`Pl011.flush`.
* RX: :meth:`Pl011.feed_input` queues host bytes; they enter the receive FIFO as space frees,
  like QEMU's chardev flow control (``pl011_can_receive``), so host input never overruns.
  The FIFO is 16 entries deep with UARTLCR_H.FEN set, else a 1-entry holding register.
  16, not r1p5's 32: the ID registers report revision 1 (QEMU's values), and Linux's
  amba-pl011 derives a 16-byte FIFO from that revision. Reading UARTDR pops the 12-bit entry
  (data and FE/PE/BE/OE) and loads its error bits into UARTRSR.
* RX interrupt: RXRIS is raised as soon as the FIFO holds a character and drops when it
  empties -- QEMU's trigger level of 1 (``pl011_set_read_trigger``). UARTIFLS is stored
  but does not move the trigger; the receive timeout (RTRIS), which would fire 32 bit
  periods after the last character below the trigger, is thus subsumed and never raised,
  as in QEMU. Modem-status and framing/parity/break interrupts never occur (no line).
* Loopback (UARTCR.LBE): transmitted bytes are also received, as QEMU 8.1+ does
  (``pl011_loopback_tx``); a loopback byte arriving at a full FIFO is lost and raises OEIS.
* DMA (UARTDMACR) is stored but there is no DMA controller on ``virt``: enabling it is
  logged once, as QEMU's LOG_UNIMP.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from armvisor.vmm.devices.base import (
    Access,
    PrimeCellDevice,
    PrimeCellState,
    Register,
    primecell_id_registers,
    primecell_interrupt_registers,
    stored_register,
)

PL011_BASE = 0x0900_0000
PL011_SPI = 1  # QEMU's VIRT_UART irq: GIC INTID 33
PL011_FIFO_DEPTH = 16
PL011_READ_TRIGGER = 1  # QEMU's read_trigger (see module docstring)
#: UARTPeriphID0-3: part number 0x011, designer 0x41 (ARM), revision 1 -- QEMU's pl011_id_arm.
PL011_PERIPH_ID = bytes((0x11, 0x10, 0x14, 0x00))

# Register widths from the register summary, DDI0183 Table 3-1.
UARTDR_DATA = 0xFF
UARTRSR_MASK = 0xF
UARTILPR_MASK = 0xFF
UARTIBRD_MASK = 0xFFFF
UARTFBRD_MASK = 0x3F
UARTLCR_H_MASK = 0xFF
UARTCR_MASK = 0xFF87  # bits 6:3 reserved
UARTIFLS_MASK = 0x3F
UARTDMACR_MASK = 0x7

# UARTFR (3.3.3)
UARTFR_RXFE = 1 << 4
UARTFR_RXFF = 1 << 6
UARTFR_TXFE = 1 << 7
# UARTRSR/UARTECR (3.3.2)
UARTRSR_OE = 1 << 3
# UARTLCR_H (3.3.7)
UARTLCR_H_FEN = 1 << 4
# UARTCR (3.3.8)
UARTCR_LBE = 1 << 7
UARTCR_TXE = 1 << 8
UARTCR_RXE = 1 << 9
# UARTDMACR (3.3.15)
UARTDMACR_RXDMAE = 1 << 0
UARTDMACR_TXDMAE = 1 << 1
# UARTRIS/UARTMIS/UARTIMSC/UARTICR bits (3.3.10-13)
UART_INT_RX = 1 << 4
UART_INT_TX = 1 << 5
UART_INT_OE = 1 << 10
UART_INT_MASK = 0x7FF

UARTCR_RESET = UARTCR_RXE | UARTCR_TXE  # 0x300
UARTIFLS_RESET = 0x12  # both FIFOs at 1/2
UARTFR_RESET = UARTFR_TXFE | UARTFR_RXFE  # 0x90 (QEMU: no modem lines asserted)


@dataclass
class Pl011State(PrimeCellState):
    """The UART's registers; ``rx_fifo`` holds 12-bit entries, oldest first."""

    rx_fifo: list[int] = field(default_factory=list)
    rsr: int = 0
    ilpr: int = 0
    ibrd: int = 0
    fbrd: int = 0
    lcr_h: int = 0
    cr: int = UARTCR_RESET
    ifls: int = UARTIFLS_RESET
    dmacr: int = 0


class Pl011(PrimeCellDevice):
    """PL011 UART at ``base``; TX goes to ``output``, RX comes from :meth:`feed_input`."""

    name = "pl011"
    compatible = "arm,pl011"
    clock_names = ("uartclk", "apb_pclk")
    interrupt_mask = UART_INT_MASK
    state_type = Pl011State
    state: Pl011State

    def __init__(
        self,
        base: int = PL011_BASE,
        output: BinaryIO | None = None,
        irq: Callable[[bool], None] | None = None,
        clock_hz: int = 24_000_000,
        spi: int = PL011_SPI,
    ) -> None:
        super().__init__(base, spi, irq)
        self.output = output if output is not None else sys.stdout.buffer
        self.clock_hz = clock_hz
        self._input: deque[int] = deque()

    def reset(self) -> None:
        """Reset the registers; host input not yet received stays queued for the next boot."""
        super().reset()
        self._fill_rx_fifo()

    # -- host side ---------------------------------------------------------------------------
    def feed_input(self, data: bytes) -> None:
        """Queue bytes arriving on the RX line; they enter the FIFO as it has room."""
        self._input.extend(data)
        self._fill_rx_fifo()

    def flush(self) -> None:
        self.output.flush()

    @property
    def fifo_depth(self) -> int:
        return PL011_FIFO_DEPTH if self.state.lcr_h & UARTLCR_H_FEN else 1

    @property
    def baud_rate(self) -> float | None:
        """UARTCLK / (16 x (IBRD + FBRD/64)) (DDI0183 3.3.6); None before the divisor is set."""
        divisor = 64 * self.state.ibrd + self.state.fbrd
        return self.clock_hz * 4 / divisor if divisor else None

    # -- register handlers -------------------------------------------------------------------
    def _read_dr(self) -> int:
        fifo = self.state.rx_fifo
        entry = fifo.pop(0) if fifo else 0
        self.state.rsr = entry >> 8
        if len(fifo) < PL011_READ_TRIGGER:
            self.state.ris &= ~UART_INT_RX
        self._fill_rx_fifo()
        self.update_irq()
        return entry

    def _write_dr(self, value: int) -> None:
        data = value & UARTDR_DATA
        self.output.write(bytes((data,)))
        if data == ord("\n"):
            self.output.flush()
        if self.state.cr & UARTCR_LBE:
            self._loopback(data)
        self.raise_interrupt(UART_INT_TX)

    def _write_ecr(self, _value: int) -> None:
        self.state.rsr = 0

    def _read_fr(self) -> int:
        count = len(self.state.rx_fifo)
        return (
            UARTFR_TXFE
            | (UARTFR_RXFE if count == 0 else 0)
            | (UARTFR_RXFF if count >= self.fifo_depth else 0)
        )

    def _write_lcr_h(self, value: int) -> None:
        fifo_toggled = (self.state.lcr_h ^ value) & UARTLCR_H_FEN
        self.state.lcr_h = value & UARTLCR_H_MASK
        if fifo_toggled:  # QEMU resets the FIFO when FEN changes
            self.state.rx_fifo.clear()
            self.state.ris &= ~UART_INT_RX
            self._fill_rx_fifo()
            self.update_irq()

    def _write_dmacr(self, value: int) -> None:
        self.state.dmacr = value & UARTDMACR_MASK
        if value & (UARTDMACR_RXDMAE | UARTDMACR_TXDMAE):
            self.guest_error("DMA is not implemented (no DMA controller on virt)", 0x048)

    # -- receive path ------------------------------------------------------------------------
    def _fill_rx_fifo(self) -> None:
        while self._input and len(self.state.rx_fifo) < self.fifo_depth:
            self._receive(self._input.popleft())

    def _loopback(self, data: int) -> None:
        if len(self.state.rx_fifo) < self.fifo_depth:
            self._receive(data)
        else:  # the shift register is overwritten; FIFO contents stay valid (3.3.1)
            self.state.rsr |= UARTRSR_OE
            self.raise_interrupt(UART_INT_OE)

    def _receive(self, entry: int) -> None:
        self.state.rx_fifo.append(entry)
        if len(self.state.rx_fifo) >= PL011_READ_TRIGGER:
            self.raise_interrupt(UART_INT_RX)

    registers = {
        0x000: Register("UARTDR", Access.RW, None, _read_dr, _write_dr),
        0x004: stored_register("UARTRSR/UARTECR", "rsr", UARTRSR_MASK, 0, _write_ecr),
        0x018: Register("UARTFR", Access.RO, UARTFR_RESET, _read_fr),
        0x020: stored_register("UARTILPR", "ilpr", UARTILPR_MASK, 0),
        0x024: stored_register("UARTIBRD", "ibrd", UARTIBRD_MASK, 0),
        0x028: stored_register("UARTFBRD", "fbrd", UARTFBRD_MASK, 0),
        0x02C: stored_register("UARTLCR_H", "lcr_h", UARTLCR_H_MASK, 0, _write_lcr_h),
        0x030: stored_register("UARTCR", "cr", UARTCR_MASK, UARTCR_RESET),
        0x034: stored_register("UARTIFLS", "ifls", UARTIFLS_MASK, UARTIFLS_RESET),
        **primecell_interrupt_registers("UART", 0x038),
        0x048: stored_register("UARTDMACR", "dmacr", UARTDMACR_MASK, 0, _write_dmacr),
        **primecell_id_registers("UART", PL011_PERIPH_ID),
    }
