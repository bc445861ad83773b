"""Register maps of the vGIC's MMIO frames (virt/kvm/arm/vgic/vgic-mmio.c: ``struct
vgic_register_region``). A frame is a table of regions; per-interrupt registers are built from
a field getter/setter and the field width, and serve any access size by splitting it into the
fields it covers (byte access to IPRIORITYR, 32-bit halves of IROUTER, ...). Offsets no region
claims are reserved: RAZ/WI, as the GIC architecture specifies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from armvisor.hyp.vgic.irq import VgicIrq

if TYPE_CHECKING:
    from armvisor.hyp.vgic.vgic import Vgic

# read(vgic, cpu, offset within the region, size) / write(..., value); ``cpu`` is the vcpu whose
# banked view is accessed (the accessor for the Distributor and GICC, the owner for GICR).
RegionRead = Callable[["Vgic", int, int, int], int]
RegionWrite = Callable[["Vgic", int, int, int, int], None]
Lookup = Callable[["Vgic", int, int], "VgicIrq | None"]
FieldGet = Callable[["Vgic", VgicIrq], int]
FieldSet = Callable[["Vgic", VgicIrq, int], None]


@dataclass(frozen=True)
class Region:
    name: str
    offset: int
    length: int
    read: RegionRead
    write: RegionWrite


def _mask(bits: int) -> int:
    return (1 << bits) - 1


def per_irq(name: str, offset: int, bits: int, nr_irqs: int, lookup: Lookup, get: FieldGet,
            put: FieldSet | None) -> Region:
    """A register array with a ``bits``-wide field per interrupt (REGISTER_DESC_WITH_BITS_PER_IRQ);
    ``put`` None makes it read-only. Interrupts ``lookup`` does not return are RAZ/WI."""

    def fields(vgic: "Vgic", cpu: int, rel: int, size: int):
        """(interrupt, first field bit, first value bit, width) of each field piece accessed."""
        bitpos, width = rel * 8, size * 8
        if bits > width:  # part of one wide field (a 32-bit half of IROUTER)
            yield lookup(vgic, cpu, bitpos // bits), bitpos % bits, 0, width
            return
        for i in range(width // bits):
            yield lookup(vgic, cpu, bitpos // bits + i), 0, i * bits, bits

    def read(vgic: "Vgic", cpu: int, rel: int, size: int) -> int:
        value = 0
        for irq, field_lo, value_lo, width in fields(vgic, cpu, rel, size):
            if irq is not None:
                value |= ((get(vgic, irq) >> field_lo) & _mask(width)) << value_lo
        return value

    def write(vgic: "Vgic", cpu: int, rel: int, size: int, value: int) -> None:
        if put is None:
            return
        for irq, field_lo, value_lo, width in fields(vgic, cpu, rel, size):
            if irq is None:
                continue
            piece = (value >> value_lo) & _mask(width)
            if width < bits:
                piece = (get(vgic, irq) & ~(_mask(width) << field_lo)) | (piece << field_lo)
            put(vgic, irq, piece)

    return Region(name, offset, nr_irqs * bits // 8, read, write)


def register(name: str, offset: int, read: Callable[["Vgic", int], int],
             write: Callable[["Vgic", int, int], None] | None = None, size: int = 4) -> Region:
    """A single register of ``size`` bytes: ``read(vgic, cpu)``, ``write(vgic, cpu, value)``
    (None: read-only, writes ignored). Narrower accesses see the addressed bytes; a narrower
    write is ignored (these registers are word-accessible only)."""

    def region_read(vgic: "Vgic", cpu: int, rel: int, width: int) -> int:
        return (read(vgic, cpu) >> (8 * rel)) & _mask(8 * width)

    def region_write(vgic: "Vgic", cpu: int, rel: int, width: int, value: int) -> None:
        if write is not None and rel == 0 and width >= 4:
            write(vgic, cpu, value & _mask(8 * size))

    return Region(name, offset, size, region_read, region_write)


def id_registers(offset: int, values: tuple[int, ...]) -> list[Region]:
    """The CoreSight-style peripheral/component ID registers, one byte value per word."""
    return [register(f"ID{i}", offset + 4 * i, lambda vgic, cpu, v=v: v) for i, v in enumerate(values)]


class Frame:
    """One MMIO frame of the vGIC (Distributor, CPU interface, a redistributor's frames),
    an in-kernel device on the VM's io bus."""

    def __init__(self, vgic: "Vgic", regions: list[Region], size: int,
                 cpu_of: Callable[["Vgic", int], int]) -> None:
        self.vgic = vgic
        self.size = size
        self.regions = sorted(regions, key=lambda r: r.offset)
        self.cpu_of = cpu_of  # (vgic, accessing vcpu index) -> the banked view to use

    def _find(self, offset: int, size: int) -> Region | None:
        for r in self.regions:
            if r.offset <= offset and offset + size <= r.offset + r.length:
                return r
        return None

    def read(self, vcpu, offset: int, size: int) -> int:
        region = self._find(offset, size)
        if region is None:
            return 0
        vgic = self.vgic
        with vgic.lock:
            return region.read(vgic, self.cpu_of(vgic, vgic.index_of(vcpu)), offset - region.offset, size)

    def write(self, vcpu, offset: int, size: int, value: int) -> None:
        region = self._find(offset, size)
        if region is None:
            return
        vgic = self.vgic
        with vgic.lock:
            region.write(vgic, self.cpu_of(vgic, vgic.index_of(vcpu)), offset - region.offset, size, value)
