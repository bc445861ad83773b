"""The flattened device tree of the ``virt`` board, as QEMU 7.2 writes it (``hw/arm/virt.c``).

:func:`build_virt_fdt` writes the tree with libfdt's sequential writer (PyPI ``pylibfdt``,
``libfdt.FdtSw``) through :class:`FdtWriter`, which devices use for their own nodes. The
nodes and properties are QEMU's for ``-M virt -cpu cortex-a57`` with PSCI over HVC (no EL2/EL3
in the guest): root, ``psci``, ``memory@<base>``, ``cpus`` (with ``cpu-map``; ``enable-method =
"psci"`` only with more than one CPU, as QEMU), ``timer``, ``apb-pclk``, ``intc@8000000``
(GICv2 distributor + CPU interface, or GICv3 distributor + one redistributor region of QEMU's
full size), each device's node, and ``chosen`` (``stdout-path``, ``bootargs`` when not empty,
``linux,initrd-start``/``-end``). Phandles are allocated in QEMU's order so a ``dtc`` diff
against QEMU's ``dumpdtb`` shows only real differences.

Left out because armvisor's ``virt`` does not have them: ``flash@0`` (cfi-flash),
``fw-cfg@9020000``, ``virtio_mmio@a000000``..``a003e00``, ``pcie@10000000``,
``pl061@9030000`` and ``gpio-keys``, ``platform-bus@c000000``, ``pmu`` (no PMUv3), the GIC's
MSI frames (``v2m@8020000``, ``its@8080000``), and ``chosen``'s random ``rng-seed`` and
``kaslr-seed`` (the blob is reproducible; ``--dump-dtb`` output does not change per run).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libfdt

from armvisor.hyp.psci import (
    PSCI_0_2_FN64_CPU_ON,
    PSCI_0_2_FN64_CPU_SUSPEND,
    PSCI_0_2_FN64_MIGRATE,
    PSCI_0_2_FN_CPU_OFF,
)

if TYPE_CHECKING:
    from armvisor.vmm.devices.base import MmioDevice

# The virt memory map (hw/arm/virt.c base_memmap).
VIRT_GIC_DIST = (0x0800_0000, 0x1_0000)
VIRT_GIC_CPU = (0x0801_0000, 0x1_0000)
VIRT_GIC_REDIST = (0x080A_0000, 0x00F6_0000)
GICV3_REDIST_SIZE = 0x2_0000  # RD_base + SGI_base frames per CPU
GICV2_MAX_CPUS = 8  # the GICv2 CPU-target fields are 8 bits wide
# CPUs a GIC can serve on virt, by GIC version: GICv2's 8, GICv3 redistributors in their window.
GIC_MAX_CPUS = {2: GICV2_MAX_CPUS, 3: VIRT_GIC_REDIST[1] // GICV3_REDIST_SIZE}

# Interrupt specifier cells (include/hw/arm/fdt.h, the arm,gic binding).
GIC_FDT_IRQ_TYPE_SPI = 0
GIC_FDT_IRQ_TYPE_PPI = 1
GIC_FDT_IRQ_FLAGS_LEVEL_HI = 4
GIC_FDT_IRQ_PPI_CPU_START = 8
# Architected timer PPIs, as PPI numbers (INTID - 16) in QEMU's order (target/arm/cpu.h).
ARCH_TIMER_S_EL1_IRQ = 13
ARCH_TIMER_NS_EL1_IRQ = 14
ARCH_TIMER_VIRT_IRQ = 11
ARCH_TIMER_NS_EL2_IRQ = 10

VIRT_MODEL = "linux,dummy-virt"
CPU_COMPATIBLE = "arm,cortex-a57"
APB_PCLK_HZ = 24_000_000
FIRST_PHANDLE = 0x8000  # QEMU's qemu_fdt_alloc_phandle starts here
ADDRESS_CELLS = 2
SIZE_CELLS = 2
CELL_MASK = 0xFFFF_FFFF


@dataclass
class BoardSpec:
    """What the device tree describes: RAM, CPUs, GIC version, devices and boot arguments.

    ``stdout_path`` defaults to the first ``pl011`` among ``devices``; ``initrd`` is the
    (start, end) guest-physical range of a loaded initrd.
    """

    ram_base: int
    ram_size: int
    cpus: int
    gic_version: int
    devices: list[MmioDevice] = field(default_factory=list)
    bootargs: str = ""
    initrd: tuple[int, int] | None = None
    stdout_path: str | None = None

    def __post_init__(self) -> None:
        if self.gic_version not in GIC_MAX_CPUS:
            raise ValueError(f"gic-version must be 2 or 3, not {self.gic_version}")
        if not 1 <= self.cpus <= GIC_MAX_CPUS[self.gic_version]:
            raise ValueError(
                f"{self.cpus} CPUs: GICv{self.gic_version} supports 1 to {GIC_MAX_CPUS[self.gic_version]}"
            )
        if self.ram_size <= 0:
            raise ValueError(f"RAM size must be positive, not {self.ram_size}")
        if self.initrd is not None and not 0 <= self.initrd[0] <= self.initrd[1]:
            start, end = self.initrd
            raise ValueError(f"initrd range 0x{start:x}-0x{end:x} is not ascending")
        if self.stdout_path is None:
            uarts = [device for device in self.devices if device.name == "pl011"]
            self.stdout_path = f"/{uarts[0].node_name}" if uarts else None


class FdtWriter:
    """libfdt's ``FdtSw`` with typed property helpers and the board's named phandles."""

    def __init__(self, phandles: dict[str, int]) -> None:
        self._sw = libfdt.FdtSw()
        self._sw.finish_reservemap()
        self._phandles = phandles

    @contextmanager
    def node(self, name: str) -> Iterator[None]:
        self._sw.begin_node(name)
        yield
        self._sw.end_node()

    def phandle(self, label: str) -> int:
        """The phandle allocated to the node ``label`` (``apb-pclk``, ``intc``, ``cpu@N``)."""
        return self._phandles[label]

    def empty(self, name: str) -> None:
        self._sw.property(name, b"")

    def string(self, name: str, value: str) -> None:
        self._sw.property_string(name, value)

    def strings(self, name: str, *values: str) -> None:
        """A string list (``compatible``, ``clock-names``): NUL-terminated strings back to back."""
        self._sw.property(name, b"".join(value.encode() + b"\0" for value in values))

    def cells(self, name: str, *values: int) -> None:
        """A list of 32-bit big-endian cells."""
        self._sw.property(name, b"".join((v & CELL_MASK).to_bytes(4, "big") for v in values))

    def reg(self, *ranges: tuple[int, int]) -> None:
        """``reg`` as (address, size) pairs in the root's 2 + 2 cells."""
        self.cells("reg", *(cell for pair in ranges for part in pair for cell in _u64_cells(part)))

    def spi_interrupt(self, spi: int) -> None:
        """``interrupts = <GIC_SPI spi IRQ_TYPE_LEVEL_HIGH>`` (the SPI number, INTID - 32)."""
        self.cells("interrupts", GIC_FDT_IRQ_TYPE_SPI, spi, GIC_FDT_IRQ_FLAGS_LEVEL_HI)

    def finish(self) -> bytes:
        fdt = self._sw.as_fdt()
        fdt.pack()
        return bytes(fdt.as_bytearray())


def _u64_cells(value: int) -> tuple[int, int]:
    return value >> 32, value & CELL_MASK


def _allocate_phandles(cpus: int) -> dict[str, int]:
    """QEMU's allocation order: the clock, the CPUs last to first, then the GIC."""
    labels = ["apb-pclk", *(f"cpu@{cpu}" for cpu in reversed(range(cpus))), "intc"]
    return {label: FIRST_PHANDLE + index for index, label in enumerate(labels)}


def build_virt_fdt(board: BoardSpec) -> bytes:
    """The board's device tree blob (DTB version 17, packed, no memory reservations)."""
    fdt = FdtWriter(_allocate_phandles(board.cpus))
    with fdt.node(""):
        fdt.cells("interrupt-parent", fdt.phandle("intc"))
        fdt.string("model", VIRT_MODEL)
        fdt.cells("#size-cells", SIZE_CELLS)
        fdt.cells("#address-cells", ADDRESS_CELLS)
        fdt.strings("compatible", VIRT_MODEL)
        _psci_node(fdt)
        _memory_node(fdt, board)
        for device in board.devices:
            device.fdt_node(fdt)
        _gic_node(fdt, board)
        _cpus_node(fdt, board)
        _timer_node(fdt, board)
        _clock_node(fdt)
        _chosen_node(fdt, board)
    return fdt.finish()


def _psci_node(fdt: FdtWriter) -> None:
    """fdt_add_psci_node for PSCI >= 1.0 over HVC (KVM's PSCI conduit)."""
    with fdt.node("psci"):
        fdt.cells("migrate", PSCI_0_2_FN64_MIGRATE)
        fdt.cells("cpu_on", PSCI_0_2_FN64_CPU_ON)
        fdt.cells("cpu_off", PSCI_0_2_FN_CPU_OFF)
        fdt.cells("cpu_suspend", PSCI_0_2_FN64_CPU_SUSPEND)
        fdt.string("method", "hvc")
        fdt.strings("compatible", "arm,psci-1.0", "arm,psci-0.2", "arm,psci")


def _memory_node(fdt: FdtWriter, board: BoardSpec) -> None:
    with fdt.node(f"memory@{board.ram_base:x}"):
        fdt.reg((board.ram_base, board.ram_size))
        fdt.string("device_type", "memory")


def _gic_node(fdt: FdtWriter, board: BoardSpec) -> None:
    """create_gic/fdt_add_gic_node, without the MSI frame subnode."""
    with fdt.node(f"intc@{VIRT_GIC_DIST[0]:x}"):
        fdt.cells("phandle", fdt.phandle("intc"))
        if board.gic_version == 2:
            fdt.reg(VIRT_GIC_DIST, VIRT_GIC_CPU)
            fdt.strings("compatible", "arm,cortex-a15-gic")
        else:
            fdt.reg(VIRT_GIC_DIST, VIRT_GIC_REDIST)
            fdt.cells("#redistributor-regions", 1)
            fdt.strings("compatible", "arm,gic-v3")
        fdt.empty("ranges")
        fdt.cells("#size-cells", SIZE_CELLS)
        fdt.cells("#address-cells", ADDRESS_CELLS)
        fdt.empty("interrupt-controller")
        fdt.cells("#interrupt-cells", 3)


def _cpus_node(fdt: FdtWriter, board: BoardSpec) -> None:
    """fdt_add_cpu_nodes: one socket, one cluster, a core per CPU (QEMU's default topology)."""
    with fdt.node("cpus"):
        fdt.cells("#size-cells", 0)
        fdt.cells("#address-cells", 1)
        with fdt.node("cpu-map"), fdt.node("socket0"), fdt.node("cluster0"):
            for cpu in range(board.cpus):
                with fdt.node(f"core{cpu}"):
                    fdt.cells("cpu", fdt.phandle(f"cpu@{cpu}"))
        for cpu in range(board.cpus):
            with fdt.node(f"cpu@{cpu}"):
                fdt.cells("phandle", fdt.phandle(f"cpu@{cpu}"))
                fdt.cells("reg", cpu)
                if board.cpus > 1:
                    fdt.string("enable-method", "psci")
                fdt.strings("compatible", CPU_COMPATIBLE)
                fdt.string("device_type", "cpu")


def _timer_node(fdt: FdtWriter, board: BoardSpec) -> None:
    """fdt_add_timer_nodes: GICv2 PPI specifiers carry a mask of the CPUs they target."""
    flags = GIC_FDT_IRQ_FLAGS_LEVEL_HI
    if board.gic_version == 2:
        flags |= ((1 << board.cpus) - 1) << GIC_FDT_IRQ_PPI_CPU_START
    ppis = (ARCH_TIMER_S_EL1_IRQ, ARCH_TIMER_NS_EL1_IRQ, ARCH_TIMER_VIRT_IRQ, ARCH_TIMER_NS_EL2_IRQ)
    with fdt.node("timer"):
        specifiers = ((GIC_FDT_IRQ_TYPE_PPI, ppi, flags) for ppi in ppis)
        fdt.cells("interrupts", *(cell for specifier in specifiers for cell in specifier))
        fdt.empty("always-on")
        fdt.strings("compatible", "arm,armv8-timer", "arm,armv7-timer")


def _clock_node(fdt: FdtWriter) -> None:
    """create_fdt's fixed 24 MHz APB clock that the PrimeCells reference."""
    with fdt.node("apb-pclk"):
        fdt.cells("phandle", fdt.phandle("apb-pclk"))
        fdt.string("clock-output-names", "clk24mhz")
        fdt.cells("clock-frequency", APB_PCLK_HZ)
        fdt.cells("#clock-cells", 0)
        fdt.strings("compatible", "fixed-clock")


def _chosen_node(fdt: FdtWriter, board: BoardSpec) -> None:
    """create_fdt + arm_load_dtb's /chosen.

    QEMU 7.2 writes the initrd range as one cell each; an initrd above 4 GiB needs two
    (Linux reads either: ``of_read_number(prop, len / 4)``).
    """
    with fdt.node("chosen"):
        if board.initrd is not None:
            start, end = board.initrd
            cells = 1 if end <= CELL_MASK else 2
            fdt.cells("linux,initrd-end", *_u64_cells(end)[-cells:])
            fdt.cells("linux,initrd-start", *_u64_cells(start)[-cells:])
        if board.bootargs:
            fdt.string("bootargs", board.bootargs)
        if board.stdout_path is not None:
            fdt.string("stdout-path", board.stdout_path)
