"""In-kernel MMIO devices (virt/kvm/kvm_main.c kvm_io_bus_read/write): an access that hits a
registered range is completed inside hyp, without KVM_EXIT_MMIO."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from armvisor.hyp.vcpu import Vcpu


class KvmIoDevice(Protocol):
    """``struct kvm_io_device_ops``: offsets are relative to the device's base."""

    def read(self, vcpu: "Vcpu", offset: int, size: int) -> int: ...

    def write(self, vcpu: "Vcpu", offset: int, size: int, value: int) -> None: ...


@dataclass(frozen=True)
class IoRange:
    base: int
    size: int
    device: KvmIoDevice


class KvmIoBus:
    """The VM's KVM_MMIO_BUS: non-overlapping ranges."""

    def __init__(self) -> None:
        self.ranges: list[IoRange] = []

    def register(self, base: int, size: int, device: KvmIoDevice) -> None:
        """kvm_io_bus_register_dev; overlapping ranges are refused."""
        for r in self.ranges:
            if base < r.base + r.size and r.base < base + size:
                raise ValueError(f"in-kernel device range 0x{base:x}+0x{size:x} overlaps 0x{r.base:x}")
        self.ranges.append(IoRange(base, size, device))

    def find(self, addr: int, length: int) -> IoRange | None:
        for r in self.ranges:
            if r.base <= addr and addr + length <= r.base + r.size:
                return r
        return None
