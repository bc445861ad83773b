"""The MMIO bus: which device owns a guest physical address (kvmtool's ``mmio.c`` range tree,
QEMU's system memory map).

Devices occupy sorted, non-overlapping ``[base, base + size)`` ranges, found by bisection.
:meth:`MmioBus.dispatch` completes one ``KVM_EXIT_MMIO``: a read fills ``run.mmio.data[:len]``
with the device's value in little-endian byte order, a write hands the device the value.

An access nobody owns -- no device at the address, an access running past a device's end, or a
size the device rejects (it raises ``ValueError``) -- is *unassigned*: the bus does not touch the
record and returns ``False``; the machine applies its policy (read as zero / ignore, as QEMU on
KVM does, or an external abort injected into the guest with ``--strict-mmio``).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from armvisor.hyp.run_record import KvmMmio
    from armvisor.vmm.devices.base import MmioDevice


class MmioBus:
    """Devices by address range."""

    def __init__(self) -> None:
        self._bases: list[int] = []
        self._devices: list[MmioDevice] = []

    @property
    def devices(self) -> list[MmioDevice]:
        """The devices, by base address."""
        return list(self._devices)

    def register(self, device: MmioDevice) -> None:
        """Map ``device`` at ``[device.base, device.base + device.size)``; ValueError when the
        range is empty or overlaps a device already mapped (kvmtool's ``kvm__register_mmio``)."""
        if device.size <= 0:
            raise ValueError(f"{device.name}: empty MMIO range at 0x{device.base:x}")
        index = bisect.bisect_right(self._bases, device.base)
        neighbours = self._devices[max(index - 1, 0):index + 1]
        for other in neighbours:
            if device.base < other.base + other.size and other.base < device.base + device.size:
                raise ValueError(f"{device.name} at 0x{device.base:x}-0x{device.base + device.size - 1:x} "
                                 f"overlaps {other.name} at 0x{other.base:x}-0x{other.base + other.size - 1:x}")
        self._bases.insert(index, device.base)
        self._devices.insert(index, device)

    def find(self, address: int, length: int = 1) -> MmioDevice | None:
        """The device whose range holds all of ``[address, address + length)``, or None."""
        index = bisect.bisect_right(self._bases, address) - 1
        if index < 0:
            return None
        device = self._devices[index]
        return device if address + length <= device.base + device.size else None

    def dispatch(self, mmio: KvmMmio) -> bool:
        """Complete one MMIO exit on its device; False when the access is unassigned."""
        device = self.find(mmio.phys_addr, mmio.len)
        if device is None:
            return False
        offset = mmio.phys_addr - device.base
        length = mmio.len
        try:
            if mmio.is_write:
                device.write(offset, length, int.from_bytes(mmio.data[:length], "little"))
            else:
                value = device.read(offset, length)
                mmio.data[:length] = (value & ((1 << (8 * length)) - 1)).to_bytes(length, "little")
        except ValueError:  # a size or offset this device cannot decode: nobody answers
            return False
        return True
