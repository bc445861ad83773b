"""GICv2 emulation: the Distributor (GICD_*) and the CPU interface (GICC_*) as memory-mapped
frames (ARM IHI 0048B; KVM's vgic-mmio-v2.c). A GIC without the Security Extensions, with
KVM's 5 priority bits; ID values as QEMU's ``virt`` board shows them (GICD_IIDR 0x43b,
GICC_IIDR 0x2043b, the GICv2 PIDR/CIDR bytes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from armvisor.hyp.vgic.common import irq_regions
from armvisor.hyp.vgic.irq import (
    GIC_SPURIOUS,
    GIC_SPURIOUS_OTHER_GROUP,
    VGIC_NR_SGIS,
    VgicIrq,
)
from armvisor.hyp.vgic.regions import Frame, Region, id_registers, per_irq, register
from armvisor.hyp.vgic.vgic import Vgic, VgicCpu

if TYPE_CHECKING:
    from armvisor.hyp.vm import Vm

GICD_CTLR = 0x000
GICD_TYPER = 0x004
GICD_IIDR = 0x008
GICD_ITARGETSR = 0x800
GICD_SGIR = 0xF00
GICD_CPENDSGIR = 0xF10
GICD_SPENDSGIR = 0xF20
GICD_ID = 0xFD0
GICD_IIDR_VALUE = 0x0000043B  # implementer ARM, as QEMU's GICv2
GIC_V2_ID = (0x04, 0x00, 0x00, 0x00, 0x90, 0xB4, 0x2B, 0x00, 0x0D, 0xF0, 0x05, 0xB1)
GIC_V2_DIST_SIZE = 0x1000

GICC_CTLR = 0x00
GICC_PMR = 0x04
GICC_BPR = 0x08
GICC_IAR = 0x0C
GICC_EOIR = 0x10
GICC_RPR = 0x14
GICC_HPPIR = 0x18
GICC_ABPR = 0x1C
GICC_AIAR = 0x20
GICC_AEOIR = 0x24
GICC_AHPPIR = 0x28
GICC_APR0 = 0xD0
GICC_NSAPR0 = 0xE0
GICC_IIDR = 0xFC
GICC_DIR = 0x1000
GICC_INTID_MASK = 0x3FF  # EOIR/DIR: InterruptID [9:0] (CPUID [12:10] for an SGI)
GICC_IIDR_VALUE = 0x0002043B  # architecture version 2, implementer ARM
GIC_V2_CPU_SIZE = 0x2000

# GICC_CTLR without the Security Extensions (IHI 0048B 4.4.1, Table 4-30).
GICC_CTLR_ENABLE_GRP0 = 1 << 0
GICC_CTLR_ENABLE_GRP1 = 1 << 1
GICC_CTLR_ACKCTL = 1 << 2
GICC_CTLR_FIQEN = 1 << 3
GICC_CTLR_CBPR = 1 << 4
GICC_CTLR_BYPASS = 0xF << 5
GICC_CTLR_EOIMODE = 1 << 9

SGIR_FILTER_LIST, SGIR_FILTER_OTHERS, SGIR_FILTER_SELF = 0, 1, 2


class VgicV2(Vgic):
    version = 2

    def __init__(self, vm: "Vm", dist_base: int, cpuif_base: int, nr_irqs: int) -> None:
        if len(vm.vcpus) > 8:
            raise ValueError("a GICv2 serves at most 8 vcpus")
        super().__init__(vm, nr_irqs)
        self.dist_base = dist_base
        self.cpuif_base = cpuif_base
        for irq in self.spis:
            irq.targets = 1 if self.uniprocessor else 0

    @property
    def uniprocessor(self) -> bool:
        return len(self.vcpus) == 1

    def targets(self, irq: VgicIrq, cpu: int) -> bool:
        return bool(irq.targets >> cpu & 1)

    def fiq_group(self, cpu: VgicCpu, group: int) -> bool:
        return group == 0 and cpu.fiqen

    def frames(self) -> list[tuple[int, Frame]]:
        """The in-kernel MMIO frames: (base, frame)."""
        own = lambda vgic, cpu: cpu  # noqa: E731 - both frames are banked by the accessor
        return [(self.dist_base, Frame(self, distributor_regions(self), GIC_V2_DIST_SIZE, own)),
                (self.cpuif_base, Frame(self, cpu_interface_regions(), GIC_V2_CPU_SIZE, own))]

    def generate_sgi(self, source: int, value: int) -> None:
        """GICD_SGIR: TargetListFilter [25:24], CPUTargetList [23:16], SGIINTID [3:0]."""
        intid, filt, target_list = value & 0xF, (value >> 24) & 3, (value >> 16) & 0xFF
        chosen = {
            SGIR_FILTER_LIST: [c for c in range(len(self.vcpus)) if target_list >> c & 1],
            SGIR_FILTER_OTHERS: [c for c in range(len(self.vcpus)) if c != source],
            SGIR_FILTER_SELF: [source],
        }.get(filt, [])
        for target in chosen:
            self.raise_sgi(source, target, intid, None)


# -- Distributor -------------------------------------------------------------------------------
def _typer(vgic: Vgic, cpu: int) -> int:
    """ITLinesNumber [4:0] = N where 32(N+1) interrupts exist, CPUNumber [7:5]."""
    return (vgic.nr_irqs // 32 - 1) | ((len(vgic.vcpus) - 1) << 5)


def _targets_get(vgic: "VgicV2", irq: VgicIrq) -> int:
    """ITARGETSR: read-only for SGIs/PPIs (the reading CPU), RAZ/WI on a uniprocessor."""
    if vgic.uniprocessor:
        return 0
    if irq.owner is not None:
        return 1 << irq.owner
    return irq.targets


def _targets_put(vgic: "VgicV2", irq: VgicIrq, value: int) -> None:
    if irq.owner is None and not vgic.uniprocessor:
        vgic.update(irq, targets=value & ((1 << len(vgic.vcpus)) - 1))


def _sgi_sources(vgic: Vgic, cpu: int, intid: int) -> VgicIrq | None:
    return vgic.private[cpu][intid] if intid < VGIC_NR_SGIS else None


def _set_sources(vgic: Vgic, irq: VgicIrq, value: int, setting: bool) -> None:
    """SPENDSGIR/CPENDSGIR: one byte per SGI, one bit per source CPU."""
    if value:
        vgic.update(irq, sources=(irq.sources | value) if setting else (irq.sources & ~value))


def distributor_regions(vgic: VgicV2) -> list[Region]:
    nr = vgic.nr_irqs
    return [
        register("GICD_CTLR", GICD_CTLR, lambda g, c: g.group_enables(),
                 lambda g, c, v: g.set_group_enables(v)),
        register("GICD_TYPER", GICD_TYPER, _typer),
        register("GICD_IIDR", GICD_IIDR, lambda g, c: GICD_IIDR_VALUE),
        *irq_regions(nr, Vgic.irq, sgi_pending_writable=False),
        per_irq("GICD_ITARGETSR", GICD_ITARGETSR, 8, nr, Vgic.irq, _targets_get, _targets_put),
        register("GICD_SGIR", GICD_SGIR, lambda g, c: 0, lambda g, c, v: g.generate_sgi(c, v)),
        per_irq("GICD_CPENDSGIR", GICD_CPENDSGIR, 8, VGIC_NR_SGIS, _sgi_sources, lambda g, i: i.sources,
                lambda g, i, v: _set_sources(g, i, v, False)),
        per_irq("GICD_SPENDSGIR", GICD_SPENDSGIR, 8, VGIC_NR_SGIS, _sgi_sources, lambda g, i: i.sources,
                lambda g, i, v: _set_sources(g, i, v, True)),
        *id_registers(GICD_ID, GIC_V2_ID),
    ]


# -- CPU interface -----------------------------------------------------------------------------
def _read_cpu_ctlr(vgic: Vgic, cpu: int) -> int:
    c = vgic.cpus[cpu]
    return (int(c.grpen[0]) | int(c.grpen[1]) << 1 | int(c.ackctl) << 2 | int(c.fiqen) << 3
            | int(c.cbpr) << 4 | c.bypass | int(c.eoimode) << 9)


def _write_cpu_ctlr(vgic: Vgic, cpu: int, value: int) -> None:
    c = vgic.cpus[cpu]
    c.grpen = [bool(value & GICC_CTLR_ENABLE_GRP0), bool(value & GICC_CTLR_ENABLE_GRP1)]
    c.ackctl = bool(value & GICC_CTLR_ACKCTL)
    c.fiqen = bool(value & GICC_CTLR_FIQEN)
    c.cbpr = bool(value & GICC_CTLR_CBPR)
    c.bypass = value & GICC_CTLR_BYPASS
    c.eoimode = bool(value & GICC_CTLR_EOIMODE)


def _abpr(vgic: Vgic, cpu: int) -> int:
    return vgic.cpus[cpu].bpr[1]


def _ack_group0(vgic: Vgic, cpu: int) -> tuple[tuple[int, ...], int]:
    """GICC_IAR/HPPIR: Group 0, and Group 1 too when AckCtl is set (else 1022 for it)."""
    return ((0, 1) if vgic.cpus[cpu].ackctl else (0,)), GIC_SPURIOUS_OTHER_GROUP


def cpu_interface_regions() -> list[Region]:
    return [
        register("GICC_CTLR", GICC_CTLR, _read_cpu_ctlr, _write_cpu_ctlr),
        register("GICC_PMR", GICC_PMR, lambda g, c: g.cpus[c].pmr, Vgic.set_pmr),
        register("GICC_BPR", GICC_BPR, lambda g, c: g.cpus[c].bpr[0], lambda g, c, v: g.cpus[c].set_bpr(0, v)),
        register("GICC_IAR", GICC_IAR, lambda g, c: g.acknowledge(c, *_ack_group0(g, c))),
        register("GICC_EOIR", GICC_EOIR, lambda g, c: 0, lambda g, c, v: g.end_of_interrupt(c, v & GICC_INTID_MASK, 0)),
        register("GICC_RPR", GICC_RPR, lambda g, c: g.cpus[c].running_priority),
        register("GICC_HPPIR", GICC_HPPIR, lambda g, c: g.hppi_id(c, *_ack_group0(g, c))),
        register("GICC_ABPR", GICC_ABPR, _abpr, lambda g, c, v: g.cpus[c].write_bpr1(v)),
        register("GICC_AIAR", GICC_AIAR, lambda g, c: g.acknowledge(c, (1,), GIC_SPURIOUS)),
        register("GICC_AEOIR", GICC_AEOIR, lambda g, c: 0, lambda g, c, v: g.end_of_interrupt(c, v & GICC_INTID_MASK, 1)),
        register("GICC_AHPPIR", GICC_AHPPIR, lambda g, c: g.hppi_id(c, (1,), GIC_SPURIOUS)),
        register("GICC_APR0", GICC_APR0, lambda g, c: g.cpus[c].apr[0],
                 lambda g, c, v: g.set_active_priorities(c, 0, v)),
        register("GICC_NSAPR0", GICC_NSAPR0, lambda g, c: g.cpus[c].apr[1],
                 lambda g, c, v: g.set_active_priorities(c, 1, v)),
        register("GICC_IIDR", GICC_IIDR, lambda g, c: GICC_IIDR_VALUE),
        register("GICC_DIR", GICC_DIR, lambda g, c: 0, lambda g, c, v: g.deactivate(c, v & GICC_INTID_MASK)),
    ]
