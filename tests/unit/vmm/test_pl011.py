"""PL011 UART registers against the ARM PrimeCell UART (PL011) TRM, ARM DDI0183, and QEMU.

Reset values and bit positions are the TRM's (Table 3-1 and sections 3.3.x), ID values QEMU's
``pl011_id_arm``; the FIFO depth 16 is what Linux's amba-pl011 derives from that revision.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import shutil
import subprocess
from pathlib import Path

import libfdt
import pytest
from guests import GUESTS_DIR, LINK_SCRIPT, RUNTIME

from armvisor.toolchain import build_elf
from armvisor.vmm.devices.pl011 import Pl011
from armvisor.vmm.devices.pl031 import Pl031
from armvisor.vmm.fdt import FdtWriter

# Offsets, DDI0183 Table 3-1.
UARTDR, UARTRSR, UARTFR, UARTILPR, UARTIBRD, UARTFBRD = 0x000, 0x004, 0x018, 0x020, 0x024, 0x028
UARTLCR_H, UARTCR, UARTIFLS, UARTIMSC, UARTRIS, UARTMIS = 0x02C, 0x030, 0x034, 0x038, 0x03C, 0x040
UARTICR, UARTDMACR = 0x044, 0x048
# Bits (3.3.3 UARTFR, 3.3.7 UARTLCR_H, 3.3.8 UARTCR, 3.3.10 interrupts, 3.3.2 UARTRSR).
RXFE, TXFF, RXFF, TXFE, BUSY = 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 3
FEN = 1 << 4
LBE = 1 << 7
RXIM, TXIM, RTIM, OEIM = 1 << 4, 1 << 5, 1 << 6, 1 << 10
RSR_OE = 1 << 3


class Output(io.BytesIO):
    """A stream that counts flushes."""

    flushes = 0

    def flush(self) -> None:
        self.flushes += 1


@pytest.fixture
def uart() -> tuple[Pl011, Output, list[bool]]:
    output = Output()
    levels: list[bool] = []
    return Pl011(output=output, irq=levels.append), output, levels


def read(dev: Pl011, offset: int) -> int:
    return dev.read(offset, 4)


def write(dev: Pl011, offset: int, value: int) -> None:
    dev.write(offset, 4, value)


def test_reset_values(uart) -> None:
    dev, _, _ = uart
    expected = {
        UARTRSR: 0, UARTFR: TXFE | RXFE, UARTILPR: 0, UARTIBRD: 0, UARTFBRD: 0, UARTLCR_H: 0,
        UARTCR: 0x300, UARTIFLS: 0x12, UARTIMSC: 0, UARTRIS: 0, UARTMIS: 0, UARTDMACR: 0,
    }  # fmt: skip
    assert {offset: read(dev, offset) for offset in expected} == expected
    assert dev.registers[UARTCR].reset == 0x300 and dev.registers[UARTFR].reset == 0x90


def test_peripheral_and_primecell_id_registers(uart) -> None:
    dev, _, _ = uart
    ids = [read(dev, 0xFE0 + 4 * i) for i in range(8)]
    assert ids == [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1]
    part_number = ids[0] | (ids[1] & 0xF) << 8
    designer = ids[1] >> 4 | (ids[2] & 0xF) << 4
    assert (part_number, designer) == (0x011, 0x41)  # PL011, ARM


def test_reset_restores_registers_and_drops_the_interrupt(uart) -> None:
    dev, _, levels = uart
    write(dev, UARTIBRD, 13)
    write(dev, UARTCR, 0x301)
    write(dev, UARTIMSC, TXIM)
    write(dev, UARTDR, ord("x"))
    assert levels == [True]
    dev.reset()
    assert levels == [True, False]
    registers = (UARTIBRD, UARTCR, UARTIMSC, UARTRIS)
    assert [read(dev, offset) for offset in registers] == [0, 0x300, 0, 0]


def test_reset_empties_the_fifo_but_keeps_queued_host_input(uart) -> None:
    dev, _, _ = uart
    dev.feed_input(b"xy")  # FEN=0 after reset: "x" in the holding register, "y" queued
    dev.reset()
    assert read(dev, UARTDR) == ord("y")
    assert read(dev, UARTFR) & RXFE


def test_transmit_writes_the_byte_and_flushes_on_newline(uart) -> None:
    dev, output, _ = uart
    for byte in b"hi":
        write(dev, UARTDR, 0xF00 | byte)  # only DATA[7:0] is transmitted
    assert output.getvalue() == b"hi" and output.flushes == 0
    write(dev, UARTDR, ord("\n"))
    assert output.getvalue() == b"hi\n" and output.flushes == 1
    dev.flush()
    assert output.flushes == 2


def test_transmit_fifo_never_fills(uart) -> None:
    dev, _, _ = uart
    for _ in range(40):
        write(dev, UARTDR, ord("a"))
        assert read(dev, UARTFR) & (TXFE | TXFF | BUSY) == TXFE


def test_tx_interrupt_raised_by_a_write_and_cleared_by_icr(uart) -> None:
    dev, _, levels = uart
    write(dev, UARTDR, ord("a"))
    assert read(dev, UARTRIS) == TXIM and read(dev, UARTMIS) == 0 and levels == []
    write(dev, UARTIMSC, TXIM)
    assert read(dev, UARTMIS) == TXIM and levels == [True]
    write(dev, UARTDR, ord("b"))
    assert levels == [True]  # the callback reports changes only
    write(dev, UARTICR, TXIM)
    assert read(dev, UARTRIS) == 0 and levels == [True, False]


def test_receive_in_order_with_flags(uart) -> None:
    dev, _, _ = uart
    write(dev, UARTLCR_H, FEN)
    dev.feed_input(b"ok")
    assert read(dev, UARTFR) & (RXFE | RXFF) == 0
    assert [read(dev, UARTDR), read(dev, UARTDR)] == [ord("o"), ord("k")]
    assert read(dev, UARTFR) & RXFE


@pytest.mark.parametrize(("lcr_h", "depth"), [(FEN, 16), (0, 1)])
def test_receive_fifo_full_flag_at_its_depth(uart, lcr_h: int, depth: int) -> None:
    dev, _, _ = uart
    write(dev, UARTLCR_H, lcr_h)
    dev.feed_input(bytes(range(depth - 1)))
    assert not read(dev, UARTFR) & RXFF
    dev.feed_input(bytes(range(depth - 1, depth + 4)))  # 5 more than fit wait on the host side
    assert read(dev, UARTFR) & (RXFF | RXFE) == RXFF
    assert [read(dev, UARTDR) for _ in range(depth + 4)] == list(range(depth + 4))
    assert read(dev, UARTFR) & (RXFF | RXFE) == RXFE


def test_rx_interrupt_follows_fifo_contents(uart) -> None:
    dev, _, levels = uart
    write(dev, UARTLCR_H, FEN)
    write(dev, UARTIMSC, RXIM | RTIM)
    dev.feed_input(b"ab")
    assert read(dev, UARTMIS) == RXIM and levels == [True]
    read(dev, UARTDR)
    assert levels == [True]
    read(dev, UARTDR)
    assert read(dev, UARTRIS) == 0 and levels == [True, False]


def test_rx_interrupt_cleared_by_icr_until_more_data(uart) -> None:
    dev, _, levels = uart
    write(dev, UARTIMSC, RXIM)
    dev.feed_input(b"a")
    write(dev, UARTICR, RXIM)
    assert levels == [True, False]
    read(dev, UARTDR)
    dev.feed_input(b"b")
    assert levels == [True, False, True]


def test_changing_fen_flushes_the_receive_fifo(uart) -> None:
    dev, _, _ = uart
    write(dev, UARTLCR_H, FEN)
    dev.feed_input(b"abc")
    write(dev, UARTLCR_H, 0)
    assert read(dev, UARTFR) & RXFE


def test_loopback_receives_what_is_sent_and_overruns(uart) -> None:
    dev, output, levels = uart
    write(dev, UARTCR, 0x300 | LBE | 1)
    write(dev, UARTIMSC, OEIM)
    write(dev, UARTDR, ord("L"))
    write(dev, UARTDR, ord("M"))  # FEN=0: one-entry holding register is full -> overrun
    assert read(dev, UARTRIS) & OEIM and levels == [True]
    assert read(dev, UARTRSR) & RSR_OE
    assert read(dev, UARTDR) == ord("L")
    assert output.getvalue() == b"LM"
    write(dev, UARTRSR, 0)  # UARTECR: any write clears the error bits
    assert read(dev, UARTRSR) == 0


@pytest.mark.parametrize(
    ("offset", "mask"),
    [(UARTILPR, 0xFF), (UARTIBRD, 0xFFFF), (UARTFBRD, 0x3F), (UARTLCR_H, 0xFF),
     (UARTCR, 0xFF87), (UARTIFLS, 0x3F), (UARTIMSC, 0x7FF), (UARTDMACR, 0x7)],
)  # fmt: skip
def test_reserved_bits_read_as_zero(uart, offset: int, mask: int) -> None:
    dev, _, _ = uart
    write(dev, offset, 0xFFFF_FFFF)
    assert read(dev, offset) == mask


def test_read_only_and_write_only_registers(uart, caplog: pytest.LogCaptureFixture) -> None:
    dev, _, _ = uart
    write(dev, UARTFR, 0)
    write(dev, UARTRIS, 0x7FF)
    write(dev, 0xFE0, 0)
    assert (read(dev, UARTFR), read(dev, UARTRIS), read(dev, 0xFE0)) == (0x90, 0, 0x11)
    assert read(dev, UARTICR) == 0
    assert "write-only UARTICR" in caplog.text


def test_undefined_offsets_read_zero_ignore_writes_and_log_once(uart, caplog) -> None:
    dev, _, _ = uart
    with caplog.at_level(logging.WARNING, logger="armvisor.vmm.devices"):
        for _ in range(3):
            assert read(dev, 0x008) == 0
        write(dev, 0x800, 0x1234)
    assert read(dev, 0x800) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert sum("read of undefined offset at offset 0x008" in m for m in messages) == 1
    assert any("write to undefined offset at offset 0x800" in m for m in messages)


def test_narrow_accesses(uart) -> None:
    dev, output, _ = uart
    dev.write(UARTDR, 1, ord("b"))  # strb, as bare-metal code does
    dev.write(UARTDR, 2, ord("h"))  # Linux's amba-pl011 uses 16-bit accessors
    assert output.getvalue() == b"bh"
    write(dev, UARTCR, 0xAB01)
    assert (dev.read(UARTCR, 1), dev.read(UARTCR + 1, 1), dev.read(UARTCR + 2, 2)) == (0x01, 0xAB, 0)
    assert dev.read(UARTCR, 8) == 0xAB01 | 0x12 << 32  # split into UARTCR then UARTIFLS
    dev.write(UARTCR + 1, 1, 0xFF)  # a lane other than the register's own: ignored
    assert read(dev, UARTCR) == 0xAB01


def test_bad_bus_accesses_raise(uart) -> None:
    dev, _, _ = uart
    with pytest.raises(ValueError, match="size 3"):
        dev.read(0, 3)
    with pytest.raises(ValueError, match="beyond"):
        dev.read(0x1000, 4)


def test_baud_rate_from_divisors() -> None:
    dev = Pl011(output=io.BytesIO(), clock_hz=4_000_000)
    assert dev.baud_rate is None
    write(dev, UARTIBRD, 1)  # DDI0183 3.3.6's example: 230400 baud from a 4 MHz UARTCLK
    write(dev, UARTFBRD, 5)
    assert dev.baud_rate == pytest.approx(4_000_000 / (16 * (1 + 5 / 64)))


def test_state_is_a_plain_dataclass(uart) -> None:
    dev, _, _ = uart
    dev.feed_input(b"z")
    write(dev, UARTIBRD, 26)
    saved = dataclasses.asdict(dev.state)
    dev.reset()
    dev.state = type(dev.state)(**saved)
    assert read(dev, UARTIBRD) == 26 and read(dev, UARTDR) == ord("z")


def test_fdt_node_is_qemus(uart) -> None:
    dev, _, _ = uart
    fdt = FdtWriter({"apb-pclk": 0x8000})
    with fdt.node(""):
        dev.fdt_node(fdt)
    tree = libfdt.Fdt(fdt.finish())
    node = tree.path_offset("/pl011@9000000")
    assert tree.getprop(node, "compatible").as_stringlist() == ["arm,pl011", "arm,primecell"]
    assert tree.getprop(node, "clock-names").as_stringlist() == ["uartclk", "apb_pclk"]
    assert bytes(tree.getprop(node, "interrupts")) == bytes.fromhex("00000000 00000001 00000004")
    assert bytes(tree.getprop(node, "clocks")) == bytes.fromhex("00008000 00008000")


# -- the same accesses on QEMU's virt board --------------------------------------------------

PL011_BASE, PL031_BASE = 0x0900_0000, 0x0901_0000
# (address, size, value to write or None to read), run in order by a guest before it prints.
# Reads at byte lanes other than 0 are left out on purpose: QEMU hands a byte read at
# offset 0x19 to pl011_read as register 6 unshifted, where APB returns the lane (base.py).
QEMU_PROBES: list[tuple[int, int, int | None]] = [
    *((PL011_BASE + offset, 4, None) for offset in (0x000, 0x004, 0x018, *range(0x020, 0x04C, 4))),
    *((PL011_BASE + 0xFE0 + 4 * i, 4, None) for i in range(8)),
    (PL011_BASE + 0x008, 4, None), (PL011_BASE + 0x04C, 4, None), (PL011_BASE + 0x800, 4, None),
    (PL011_BASE + UARTFR, 1, None), (PL011_BASE + UARTCR, 2, None), (PL011_BASE + UARTCR, 8, None),
    (PL011_BASE + UARTIMSC, 4, TXIM), (PL011_BASE + UARTDR, 1, ord("A")),
    (PL011_BASE + UARTRIS, 4, None), (PL011_BASE + UARTMIS, 4, None),
    (PL011_BASE + UARTICR, 4, TXIM), (PL011_BASE + UARTRIS, 4, None),
    (PL011_BASE + UARTLCR_H, 4, 0x70), (PL011_BASE + UARTLCR_H, 4, None),
    (PL011_BASE + UARTIBRD, 4, 13), (PL011_BASE + UARTFBRD, 4, 1), (PL011_BASE + UARTIBRD, 8, None),
    (PL011_BASE + UARTCR, 4, 0x301), (PL011_BASE + UARTCR, 4, None), (PL011_BASE + UARTFR, 4, None),
    *((PL031_BASE + offset, 4, None) for offset in range(0x004, 0x01C, 4)),
    *((PL031_BASE + 0xFE0 + 4 * i, 4, None) for i in range(8)),
    (PL031_BASE + 0x020, 4, None),
    (PL031_BASE + 0x00C, 4, 0), (PL031_BASE + 0x00C, 4, None),
    (PL031_BASE + 0x008, 4, 1000), (PL031_BASE + 0x008, 4, None),
    (PL031_BASE + 0x010, 4, 0xFF), (PL031_BASE + 0x010, 4, None),
]  # fmt: skip

PROBE_GUEST = r"""
#include "guest.h"
struct op { uint64_t addr; uint32_t size, write; uint64_t value; };
static const struct op ops[] = { OPS };
#define N (sizeof ops / sizeof ops[0])
static uint64_t results[N];

static uint64_t mmio(const struct op *op)
{
    switch (op->size) {
    case 1: if (op->write) *(volatile uint8_t *)op->addr = op->value;
            return *(volatile uint8_t *)op->addr;
    case 2: return *(volatile uint16_t *)op->addr;
    case 4: if (op->write) { *(volatile uint32_t *)op->addr = op->value; return 0; }
            return *(volatile uint32_t *)op->addr;
    default: return *(volatile uint64_t *)op->addr;
    }
}

int main(void)
{
    for (unsigned i = 0; i < N; i++)
        results[i] = mmio(&ops[i]);
    uart_putc('\n');
    for (unsigned i = 0; i < N; i++)
        if (!ops[i].write) { uart_put_hex(results[i], 1); uart_putc('\n'); }
    return 0;
}
"""


def model_probes() -> list[int]:
    """The reads of QEMU_PROBES answered by armvisor's device models."""
    devices = {PL011_BASE: Pl011(output=io.BytesIO()), PL031_BASE: Pl031()}
    values = []
    for address, size, value in QEMU_PROBES:
        device = devices[address & ~0xFFFF]
        if value is None:
            values.append(device.read(address & 0xFFF, size))
        else:
            device.write(address & 0xFFF, size, value)
    return values


@pytest.mark.skipif(
    shutil.which("qemu-system-aarch64") is None or shutil.which("aarch64-linux-gnu-gcc") is None,
    reason="needs qemu-system-aarch64 and the AArch64 cross toolchain",
)
def test_register_accesses_match_qemu_virt(tmp_path: Path) -> None:
    """Reset values, ID registers, masks and TX interrupt bits as QEMU's pl011/pl031 show them."""
    # the guest writes bytes only to UARTDR (offset 0)
    assert all(size != 1 or value is None or address & 0xFFF == 0 for address, size, value in QEMU_PROBES)
    ops = ", ".join(f"{{0x{a:x}, {s}, {int(v is not None)}, 0x{v or 0:x}}}" for a, s, v in QEMU_PROBES)
    source = tmp_path / "probe.c"
    source.write_text(PROBE_GUEST.replace("OPS", ops))
    elf = build_elf([*RUNTIME, source], tmp_path / "probe.elf", link_script=LINK_SCRIPT,
                    include_dirs=[GUESTS_DIR])  # fmt: skip
    proc = subprocess.Popen(
        ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-display", "none",
         "-serial", "stdio", "-monitor", "none", "-nodefaults", "-no-reboot", "-kernel", str(elf)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = out.decode().split("\n")
    assert lines[0] == "A"  # the probe's own UARTDR write
    qemu = [int(line, 16) for line in lines[1:] if line]
    assert model_probes() == qemu
