"""The MMIO bus: sorted non-overlapping ranges (kvmtool's mmio range tree), completion of
KVM_EXIT_MMIO records (data[] in guest byte order, i.e. little-endian), unassigned accesses."""

from __future__ import annotations

import pytest

from armvisor.kvm import KvmRun
from armvisor.vmm.bus import MmioBus
from armvisor.vmm.devices import Pl011


class Recorder:
    """A device that records accesses and answers reads with ``value``."""

    def __init__(self, name: str, base: int, size: int, value: int = 0, sizes: tuple[int, ...] = (1, 2, 4, 8)):
        self.name, self.base, self.size, self.value, self.sizes = name, base, size, value, sizes
        self.accesses: list[tuple[str, int, int, int | None]] = []

    def _check(self, size: int) -> None:
        if size not in self.sizes:
            raise ValueError(f"{self.name}: {size}-byte access")

    def read(self, offset: int, size: int) -> int:
        self._check(size)
        self.accesses.append(("read", offset, size, None))
        return self.value

    def write(self, offset: int, size: int, value: int) -> None:
        self._check(size)
        self.accesses.append(("write", offset, size, value))


def mmio(address: int, length: int, write: bytes | None = None) -> KvmRun:
    run = KvmRun()
    run.mmio.phys_addr, run.mmio.len = address, length
    run.mmio.is_write = int(write is not None)
    run.mmio.data[:] = (write or b"").ljust(8, b"\xee")
    return run


@pytest.fixture
def bus() -> tuple[MmioBus, Recorder, Recorder]:
    bus = MmioBus()
    high, low = Recorder("high", 0x9010000, 0x1000, 0x1122334455667788), Recorder("low", 0x9000000, 0x1000)
    bus.register(high)
    bus.register(low)  # out of order on purpose
    return bus, low, high


def test_devices_sorted_by_base(bus) -> None:
    b, low, high = bus
    assert b.devices == [low, high]


@pytest.mark.parametrize(("base", "size"), [(0x9000000, 0x1000), (0x8fff000, 0x1001), (0x9000fff, 1),
                                            (0x900f000, 0x2000), (0x8000000, 0x2000000)])
def test_overlap_rejected(bus, base: int, size: int) -> None:
    with pytest.raises(ValueError, match="overlaps"):
        bus[0].register(Recorder("new", base, size))


def test_adjacent_ranges_accepted(bus) -> None:
    b = bus[0]
    b.register(Recorder("between", 0x9001000, 0xF000))
    b.register(Recorder("below", 0x8fff000, 0x1000))
    assert [d.name for d in b.devices] == ["below", "low", "between", "high"]


@pytest.mark.parametrize(("address", "length", "owner"), [
    (0x9000000, 4, "low"), (0x9000ffc, 4, "low"), (0x9000fff, 1, "low"),
    (0x9000ffd, 4, None),  # runs past the end of low
    (0x9001000, 1, None), (0x8ffffff, 1, None), (0x9010000, 8, "high"), (0x9011000, 1, None), (0, 4, None),
])
def test_find(bus, address: int, length: int, owner: str | None) -> None:
    device = bus[0].find(address, length)
    assert (device.name if device else None) == owner


def test_read_fills_data_little_endian(bus) -> None:
    b, _, high = bus
    run = mmio(0x9010004, 4)
    assert b.dispatch(run.mmio)
    assert high.accesses == [("read", 4, 4, None)]
    assert bytes(run.mmio.data) == bytes.fromhex("88776655") + b"\xee" * 4  # only len bytes written


def test_write_passes_value(bus) -> None:
    b, low, _ = bus
    run = mmio(0x9000010, 2, write=bytes((0x34, 0x12)))
    assert b.dispatch(run.mmio)
    assert low.accesses == [("write", 0x10, 2, 0x1234)]


def test_unassigned_leaves_record_alone(bus) -> None:
    run = mmio(0x7000_0000, 4)
    assert not bus[0].dispatch(run.mmio)
    assert bytes(run.mmio.data) == b"\xee" * 8


def test_crossing_end_is_unassigned(bus) -> None:
    b, low, _ = bus
    assert not b.dispatch(mmio(0x9000ffe, 4).mmio)
    assert low.accesses == []


def test_size_rejected_by_device_is_unassigned() -> None:
    b = MmioBus()
    b.register(Recorder("words", 0x1000, 0x100, sizes=(4,)))
    assert not b.dispatch(mmio(0x1000, 1).mmio)
    assert b.dispatch(mmio(0x1000, 4).mmio)


def test_pl011_flag_register_reset_value() -> None:
    """UARTFR after reset: TXFE (bit 7) and RXFE (bit 4) set, BUSY clear (DDI0183 3.3.3)."""
    b = MmioBus()
    b.register(Pl011(output=None))
    run = mmio(0x9000018, 4)
    assert b.dispatch(run.mmio)
    assert int.from_bytes(run.mmio.data[:4], "little") & 0xF8 == 0x90
