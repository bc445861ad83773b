"""MMIO device base, register tables and the PrimeCell peripheral frame.

Every device declares its registers as a table ``offset -> Register`` (name as in the TRM,
access, documented reset value, read/write handlers); :class:`MmioDevice` turns bus accesses
into register accesses with one policy for all devices:

* Registers are 32 bits wide, on an APB bus (AMBA APB, ARM IHI 0024). The bus delivers 1, 2,
  4 and 8-byte accesses; an 8-byte access is split into two 4-byte accesses, low address
  first, as QEMU's memory core does for devices whose ``max_access_size`` is 4 (so it need
  only be 4-byte aligned, as on QEMU, which does not fault misaligned Device accesses).
* A narrower read returns its byte lanes of the register (APB carries the whole word and the
  interconnect selects the lanes). A narrower write at the register's own offset writes the
  zero-extended value -- what a ``strb``/``strh`` to ``UARTDR`` does on both QEMU and
  hardware (Linux's amba-pl011 uses 16-bit accesses); a narrow write to any other lane and a
  misaligned access are guest errors (Device memory would fault them in the CPU anyway).
* An undefined offset reads as zero and ignores writes, like QEMU's ``pl011_read``/
  ``pl031_read`` "bad offset"; a write to a read-only or a read of a write-only register is
  ignored/reads zero as the TRMs specify. Each distinct guest error is logged once (logger
  ``armvisor.vmm.devices``, QEMU's ``LOG_GUEST_ERROR``), never raised: the guest did it.

Register state lives in a separate dataclass (``state``) so it can be saved and compared.
"""

from __future__ import annotations

import enum
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from armvisor.vmm.fdt import FdtWriter

log = logging.getLogger("armvisor.vmm.devices")

REGISTER_BYTES = 4
REGISTER_MASK = 0xFFFF_FFFF
ACCESS_SIZES = (1, 2, 4, 8)

#: PrimeCell identification registers, PeriphID0-3 then PCellID0-3 (ARM DDI0183 3.3.14-15).
PRIMECELL_ID_OFFSET = 0xFE0
PRIMECELL_CELL_ID = bytes((0x0D, 0xF0, 0x05, 0xB1))
PRIMECELL_SIZE = 0x1000  # each PrimeCell decodes a 4 KiB APB window


class Access(enum.Enum):
    """Register access type as the TRMs' register summaries list it."""

    RW = "RW"
    RO = "RO"
    WO = "WO"


ReadHandler = Callable[[Any], int]
WriteHandler = Callable[[Any, int], None]


@dataclass(frozen=True)
class Register:
    """One 32-bit register: TRM name, access, reset value and handlers.

    ``reset`` is the value the TRM (or QEMU where it differs, documented by the device) gives
    after reset; ``None`` where reads are not a fixed value (data FIFOs, counters).
    Handlers are the device's functions, called with the device.
    """

    name: str
    access: Access
    reset: int | None
    read: ReadHandler | None = None
    write: WriteHandler | None = None


def read_only(name: str, value: int) -> Register:
    """A constant read-only register (identification registers)."""
    return Register(name, Access.RO, value, read=lambda _device: value)


def stored_register(
    name: str, attribute: str, mask: int, reset: int, write: WriteHandler | None = None
) -> Register:
    """A read/write register kept in ``device.state.<attribute>``; reserved bits read as zero.

    ``write`` replaces the plain store when the write has side effects (it then masks itself).
    """

    def read(device: Any) -> int:
        return int(getattr(device.state, attribute))

    def store(device: Any, value: int) -> None:
        setattr(device.state, attribute, value & mask)

    return Register(name, Access.RW, reset, read, write or store)


def primecell_id_registers(prefix: str, periph_id: bytes) -> dict[int, Register]:
    """The eight ID registers at 0xFE0-0xFFC: ``<prefix>PeriphID0-3``, ``<prefix>PCellID0-3``."""
    names = [f"{prefix}PeriphID{i}" for i in range(4)] + [f"{prefix}PCellID{i}" for i in range(4)]
    values = periph_id + PRIMECELL_CELL_ID
    if len(values) != len(names):
        raise ValueError(f"{prefix}: 4 peripheral ID bytes expected, got {len(periph_id)}")
    return {
        PRIMECELL_ID_OFFSET + REGISTER_BYTES * i: read_only(name, value)
        for i, (name, value) in enumerate(zip(names, values))
    }


class MmioDevice(ABC):
    """A memory-mapped device: the interface the VMM's bus and device tree use.

    Subclasses set ``name``, ``base``, ``size`` and ``registers`` and implement ``reset`` and
    ``fdt_node``. ``read``/``write`` take an offset relative to ``base`` and a size in bytes.
    """

    name: str
    base: int
    size: int
    registers: ClassVar[Mapping[int, Register]]

    def __init__(self) -> None:
        self._reported: set[tuple[str, int]] = set()

    @property
    def node_name(self) -> str:
        """Device-tree node name, ``name@base`` as QEMU spells it (``pl011@9000000``)."""
        return f"{self.name}@{self.base:x}"

    @abstractmethod
    def reset(self) -> None:
        """Put every register back to its reset value."""

    @abstractmethod
    def fdt_node(self, fdt: FdtWriter) -> None:
        """Add this device's node to the device tree being written."""

    def read(self, offset: int, size: int) -> int:
        """A guest load of ``size`` bytes at ``offset``."""
        if not self._access_ok(offset, size):
            return 0
        if size > REGISTER_BYTES:
            high = self.read(offset + REGISTER_BYTES, REGISTER_BYTES)
            return self.read(offset, REGISTER_BYTES) | high << 32
        lane = offset % REGISTER_BYTES
        register = self.registers.get(offset - lane)
        if register is None:
            self.guest_error("read of undefined offset", offset)
            return 0
        if register.read is None:
            self.guest_error(f"read of write-only {register.name}", offset)
            return 0
        return (register.read(self) >> (8 * lane)) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        """A guest store of ``size`` bytes of ``value`` at ``offset``."""
        if not self._access_ok(offset, size):
            return
        if size > REGISTER_BYTES:
            self.write(offset, REGISTER_BYTES, value & REGISTER_MASK)
            self.write(offset + REGISTER_BYTES, REGISTER_BYTES, (value >> 32) & REGISTER_MASK)
            return
        if offset % REGISTER_BYTES:
            self.guest_error(f"{size}-byte write off a register boundary", offset)
            return
        register = self.registers.get(offset)
        if register is None:
            self.guest_error("write to undefined offset", offset)
            return
        if register.write is None:
            self.guest_error(f"write to read-only {register.name}", offset)
            return
        register.write(self, value & ((1 << (8 * size)) - 1))

    def guest_error(self, what: str, offset: int) -> None:
        """Log a guest programming error once per kind and offset (QEMU's LOG_GUEST_ERROR)."""
        if (what, offset) not in self._reported:
            self._reported.add((what, offset))
            log.warning("%s: %s at offset 0x%03x (ignored)", self.name, what, offset)

    def _access_ok(self, offset: int, size: int) -> bool:
        """Reject what no bus can deliver (ValueError); log misaligned guest accesses."""
        if size not in ACCESS_SIZES:
            raise ValueError(f"{self.name}: MMIO access size {size} is not 1, 2, 4 or 8 bytes")
        if not 0 <= offset <= self.size - size:
            raise ValueError(
                f"{self.name}: offset 0x{offset:x} (+{size}) beyond its 0x{self.size:x} bytes"
            )
        if offset % min(size, REGISTER_BYTES):
            self.guest_error(f"misaligned {size}-byte access", offset)
            return False
        return True


@dataclass
class PrimeCellState:
    """Interrupt state every PrimeCell here shares: raw status, mask, and the output level."""

    ris: int = 0
    imsc: int = 0
    irq_level: bool = False


class PrimeCellDevice(MmioDevice):
    """An AMBA PrimeCell peripheral: 4 KiB window, ID registers, one SPI, APB clocks.

    The interrupt output is ``(RIS & IMSC) != 0`` (UARTINTR, RTCINTR), reported to the
    ``irq`` callback whenever it changes. Its device-tree node is the one QEMU's ``virt``
    writes (``create_uart``/``create_rtc``): ``compatible = "<type>", "arm,primecell"``,
    ``reg``, ``interrupts = <SPI n level-high>`` and an ``apb-pclk`` reference per clock name.
    """

    compatible: ClassVar[str]
    clock_names: ClassVar[tuple[str, ...]]
    interrupt_mask: ClassVar[int]  # the implemented bits of IMSC/RIS/MIS/ICR
    state_type: ClassVar[type[PrimeCellState]]
    state: Any  # the subclass's state_type instance

    def __init__(self, base: int, spi: int, irq: Callable[[bool], None] | None) -> None:
        super().__init__()
        self.base = base
        self.size = PRIMECELL_SIZE
        self.spi = spi
        self.irq = irq
        self.state = self.state_type()

    def reset(self) -> None:
        level = self.state.irq_level
        self.state = self.state_type(irq_level=level)
        self.update_irq()

    def fdt_node(self, fdt: FdtWriter) -> None:
        with fdt.node(self.node_name):
            fdt.strings("compatible", self.compatible, "arm,primecell")
            fdt.reg((self.base, self.size))
            fdt.spi_interrupt(self.spi)
            fdt.cells("clocks", *(fdt.phandle("apb-pclk") for _ in self.clock_names))
            fdt.strings("clock-names", *self.clock_names)

    def update_irq(self) -> None:
        """Recompute the interrupt output; tell the ``irq`` callback when it changes."""
        level = bool(self.state.ris & self.state.imsc)
        if level != self.state.irq_level:
            self.state.irq_level = level
            if self.irq is not None:
                self.irq(level)

    def poll(self) -> None:
        """Bring time-driven state up to date (the VMM's run loop may call it); no-op here."""

    def read_ris(self) -> int:
        self.poll()
        return self.state.ris

    def read_imsc(self) -> int:
        return self.state.imsc

    def read_mis(self) -> int:
        self.poll()
        return self.state.ris & self.state.imsc

    def write_imsc(self, value: int) -> None:
        self.state.imsc = value & self.interrupt_mask
        self.update_irq()

    def write_icr(self, value: int) -> None:
        """Writing 1 to a bit clears that raw interrupt (DDI0183 3.3.13, DDI0224 3.3.8)."""
        self.state.ris &= ~value
        self.update_irq()

    def raise_interrupt(self, bits: int) -> None:
        self.state.ris |= bits
        self.update_irq()


def primecell_interrupt_registers(prefix: str, imsc_offset: int) -> dict[int, Register]:
    """IMSC, RIS, MIS, ICR at consecutive words, as both PL011 and PL031 lay them out."""
    device = PrimeCellDevice
    return {
        imsc_offset: Register(f"{prefix}IMSC", Access.RW, 0, device.read_imsc, device.write_imsc),
        imsc_offset + 4: Register(f"{prefix}RIS", Access.RO, 0, device.read_ris),
        imsc_offset + 8: Register(f"{prefix}MIS", Access.RO, 0, device.read_mis),
        imsc_offset + 12: Register(f"{prefix}ICR", Access.WO, None, write=device.write_icr),
    }
