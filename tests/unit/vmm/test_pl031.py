"""PL031 RTC registers against the ARM PrimeCell RTC (PL031) TRM, ARM DDI0224, and QEMU.

RTCDR is checked against the host's ``time.time()``; match-interrupt timing uses a fake clock.
"""

from __future__ import annotations

import time

import libfdt
import pytest

from armvisor.vmm.devices.pl031 import Pl031
from armvisor.vmm.fdt import FdtWriter

# Offsets, DDI0224 Table 3-1.
RTCDR, RTCMR, RTCLR, RTCCR, RTCIMSC, RTCRIS, RTCMIS, RTCICR = range(0, 0x20, 4)
RTCINTR = 1  # bit 0 of RTCIMSC/RTCRIS/RTCMIS/RTCICR


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rtc() -> tuple[Pl031, FakeClock, list[bool]]:
    clock = FakeClock(1_700_000_000.25)
    levels: list[bool] = []
    return Pl031(irq=levels.append, clock=clock), clock, levels


def read(dev: Pl031, offset: int) -> int:
    return dev.read(offset, 4)


def write(dev: Pl031, offset: int, value: int) -> None:
    dev.write(offset, 4, value)


def test_counts_real_time() -> None:
    dev = Pl031()
    before = int(time.time())
    value = read(dev, RTCDR)
    assert before <= value <= int(time.time())


def test_load_register_sets_the_counter_which_keeps_counting(rtc) -> None:
    dev, clock, _ = rtc
    write(dev, RTCLR, 1000)
    assert read(dev, RTCDR) == 1000 and read(dev, RTCLR) == 1000
    clock.now += 5
    assert read(dev, RTCDR) == 1005


def test_load_register_on_the_real_clock() -> None:
    dev = Pl031()
    write(dev, RTCLR, 0x1234_5678)
    assert 0x1234_5678 <= read(dev, RTCDR) <= 0x1234_5678 + 1


def test_counter_wraps_at_32_bits(rtc) -> None:
    dev, clock, _ = rtc
    write(dev, RTCLR, 0xFFFF_FFFF)
    clock.now += 2
    assert read(dev, RTCDR) == 1


def test_reset_values(rtc) -> None:
    dev, _, _ = rtc
    # TRM reset values; RTCCR reads 1: the RTC on virt is started (QEMU).
    expected = {RTCMR: 0, RTCLR: 0, RTCCR: 1, RTCIMSC: 0, RTCRIS: 0, RTCMIS: 0}
    assert {offset: read(dev, offset) for offset in expected} == expected


def test_id_registers(rtc) -> None:
    dev, _, _ = rtc
    ids = [read(dev, 0xFE0 + 4 * i) for i in range(8)]
    assert ids == [0x31, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1]
    assert ids[0] | (ids[1] & 0xF) << 8 == 0x031  # part number


def test_control_register_writes_are_ignored(rtc) -> None:
    dev, _, _ = rtc
    write(dev, RTCCR, 0)
    assert read(dev, RTCCR) == 1


def test_match_interrupt_fires_when_the_counter_reaches_rtcmr(rtc) -> None:
    dev, clock, levels = rtc
    write(dev, RTCLR, 100)
    write(dev, RTCIMSC, RTCINTR)
    write(dev, RTCMR, 103)
    assert dev.next_deadline() == int(clock.now) + 3
    clock.now += 2
    dev.poll()
    assert read(dev, RTCRIS) == 0 and levels == []
    clock.now += 1
    dev.poll()
    assert read(dev, RTCDR) == 103
    assert read(dev, RTCRIS) == RTCINTR and read(dev, RTCMIS) == RTCINTR and levels == [True]
    assert dev.next_deadline() is None
    write(dev, RTCICR, RTCINTR)
    assert read(dev, RTCRIS) == 0 and levels == [True, False]


def test_status_reads_see_a_passed_match_without_poll(rtc) -> None:
    dev, clock, levels = rtc
    write(dev, RTCLR, 10)
    write(dev, RTCMR, 11)
    clock.now += 1
    assert read(dev, RTCRIS) == RTCINTR
    assert read(dev, RTCMIS) == 0 and levels == []  # masked: RTCINTR stays low


def test_match_equal_to_the_counter_fires_at_once(rtc) -> None:
    dev, _, levels = rtc
    write(dev, RTCIMSC, RTCINTR)
    write(dev, RTCLR, 50)
    write(dev, RTCMR, 50)
    assert levels == [True]


def test_loading_the_counter_rearms_the_match(rtc) -> None:
    dev, clock, _ = rtc
    write(dev, RTCLR, 0)
    write(dev, RTCMR, 10)
    write(dev, RTCLR, 8)
    assert dev.next_deadline() == int(clock.now) + 2


def test_icr_clears_only_with_bit_0_and_is_write_only(rtc) -> None:
    dev, _, _ = rtc
    write(dev, RTCLR, 7)
    write(dev, RTCMR, 7)
    write(dev, RTCICR, 0)
    assert read(dev, RTCRIS) == RTCINTR
    write(dev, RTCICR, RTCINTR)
    assert read(dev, RTCRIS) == 0
    assert read(dev, RTCICR) == 0


def test_read_only_registers_ignore_writes(rtc) -> None:
    dev, _, _ = rtc
    write(dev, RTCLR, 5)
    write(dev, RTCDR, 999)
    write(dev, RTCRIS, 1)
    assert read(dev, RTCDR) == 5 and read(dev, RTCRIS) == 0


def test_imsc_has_one_bit(rtc) -> None:
    dev, _, _ = rtc
    write(dev, RTCIMSC, 0xFFFF_FFFF)
    assert read(dev, RTCIMSC) == 1


def test_reset_keeps_time_and_clears_the_interrupt(rtc) -> None:
    dev, _, levels = rtc
    write(dev, RTCIMSC, RTCINTR)
    write(dev, RTCLR, 42)
    write(dev, RTCMR, 42)
    dev.reset()
    assert levels == [True, False]
    assert read(dev, RTCDR) == 42
    assert (read(dev, RTCMR), read(dev, RTCLR), read(dev, RTCIMSC), read(dev, RTCRIS)) == (0, 0, 0, 0)


def test_undefined_offset_reads_zero(rtc) -> None:
    dev, _, _ = rtc
    assert read(dev, 0x020) == 0 and read(dev, 0xFDC) == 0


def test_fdt_node_is_qemus() -> None:
    fdt = FdtWriter({"apb-pclk": 0x8000})
    with fdt.node(""):
        Pl031().fdt_node(fdt)
    tree = libfdt.Fdt(fdt.finish())
    node = tree.path_offset("/pl031@9010000")
    assert tree.getprop(node, "compatible").as_stringlist() == ["arm,pl031", "arm,primecell"]
    assert tree.getprop(node, "clock-names").as_stringlist() == ["apb_pclk"]
    assert bytes(tree.getprop(node, "interrupts")) == bytes.fromhex("00000000 00000002 00000004")
    assert bytes(tree.getprop(node, "reg")) == bytes.fromhex("00000000 09010000 00000000 00001000")
