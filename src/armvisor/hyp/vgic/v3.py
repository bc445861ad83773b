"""GICv3 emulation: the Distributor, one redistributor per vcpu (RD_base and SGI_base frames)
and the CPU interface's system registers (ARM IHI 0069; KVM's vgic-mmio-v3.c, vgic-v3.c and
vgic-sys-reg-v3.c). Affinity routing is always on and there is a single Security state
(GICD_CTLR.ARE and DS read as one, as under KVM); priorities have 5 bits; LPIs and the ITS are
not implemented (GICD_TYPER.LPIS = 0); IGRPMODR is RAZ/WI with one Security state."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from armvisor.arch.sysregs import MPIDR_HWID_BITMASK
from armvisor.hyp.vgic.common import irq_regions
from armvisor.hyp.vgic.irq import GIC_SPURIOUS, VGIC_NR_PRIVATE_IRQS, VgicIrq
from armvisor.hyp.vgic.regions import Frame, Region, id_registers, per_irq, register
from armvisor.hyp.vgic.vgic import Vgic, VgicCpu

if TYPE_CHECKING:
    from armvisor.hyp.vm import Vm

GICD_CTLR = 0x0000
GICD_TYPER = 0x0004
GICD_IIDR = 0x0008
GICD_TYPER2 = 0x000C
GICD_IROUTER = 0x6000
GICD_PIDR4 = 0xFFD0
GICD_CTLR_ARE = 1 << 4
GICD_CTLR_DS = 1 << 6
GICD_TYPER_IDBITS = 9 << 19  # INTIDs up to 1023
GICD_TYPER_A3V = 1 << 24
GICD_TYPER_NO1N = 1 << 25  # 1 of N SPI routing is not supported (IROUTER.IRM is RAZ/WI)
GIC_IIDR_VALUE = 0x0000043B  # implementer ARM (QEMU's value)
# PIDR4..7, PIDR0..3, CIDR0..3 with ArchRev = 3 in PIDR2 (QEMU's gicd_ids / gicr_ids).
GICD_V3_ID = (0x44, 0x00, 0x00, 0x00, 0x92, 0xB4, 0x3B, 0x00, 0x0D, 0xF0, 0x05, 0xB1)
GICR_V3_ID = (0x44, 0x00, 0x00, 0x00, 0x93, 0xB4, 0x3B, 0x00, 0x0D, 0xF0, 0x05, 0xB1)
GIC_V3_DIST_SIZE = 0x10000

GICR_CTLR = 0x0000
GICR_IIDR = 0x0004
GICR_TYPER = 0x0008
GICR_WAKER = 0x0014
GICR_PIDR4 = 0xFFD0
GICR_TYPER_LAST = 1 << 4
GICR_WAKER_PROCESSOR_SLEEP = 1 << 1
GICR_WAKER_CHILDREN_ASLEEP = 1 << 2
GICR_SGI_BASE = 0x10000
GICR_IGRPMODR0 = 0x0D00
GIC_V3_REDIST_SIZE = 0x20000  # RD_base + SGI_base, 64 KiB each

# ICC_CTLR_EL1 (IHI 0069 12.2.6): CBPR [0], EOImode [1], PRIbits [10:8], IDbits [13:11], A3V [15].
ICC_CTLR_CBPR = 1 << 0
ICC_CTLR_EOIMODE = 1 << 1
ICC_CTLR_RO = (4 << 8) | (1 << 15)  # 5 priority bits, 16-bit INTID field, Aff3 in SGIs
ICC_SRE_EL1_VALUE = 0x7  # SRE, DFB, DIB: RAO/WI (KVM's vSRE)


def affinity(mpidr: int) -> int:
    """Aff3:Aff2:Aff1:Aff0 as GICD_IROUTER holds them (MPIDR_EL1 layout, Aff3 at [39:32])."""
    return mpidr & MPIDR_HWID_BITMASK


class VgicV3(Vgic):
    version = 3

    def __init__(self, vm: "Vm", dist_base: int, redist_base: int, nr_irqs: int) -> None:
        super().__init__(vm, nr_irqs)
        self.dist_base = dist_base
        self.redist_base = redist_base
        self.affinities = [affinity(v.mpidr) for v in self.vcpus]
        self.sleeping = [True] * len(self.vcpus)  # GICR_WAKER.ProcessorSleep
        for irq in self.spis:
            irq.mpidr = self.affinities[0]

    def targets(self, irq: VgicIrq, cpu: int) -> bool:
        return irq.mpidr == self.affinities[cpu]

    def fiq_group(self, cpu: VgicCpu, group: int) -> bool:
        """Group 0 is signalled as FIQ, Group 1 as IRQ (IHI 0069 4.6)."""
        return group == 0

    def frames(self) -> list[tuple[int, Frame]]:
        frames = [(self.dist_base, Frame(self, distributor_regions(self), GIC_V3_DIST_SIZE,
                                         lambda vgic, cpu: cpu))]
        for n in range(len(self.vcpus)):
            frames.append((self.redist_base + n * GIC_V3_REDIST_SIZE,
                           Frame(self, redistributor_regions(self), GIC_V3_REDIST_SIZE,
                                 lambda vgic, cpu, n=n: n)))
        return frames

    def generate_sgi(self, source: int, value: int, group: int) -> None:
        """ICC_SGI0R/SGI1R/ASGI1R_EL1: TargetList [15:0], Aff1 [23:16], INTID [27:24],
        Aff2 [39:32], IRM [40], RS [47:44], Aff3 [55:48]."""
        intid = (value >> 24) & 0xF
        if value >> 40 & 1:
            chosen = [c for c in range(len(self.vcpus)) if c != source]
        else:
            base = ((value >> 48 & 0xFF) << 32) | ((value >> 32 & 0xFF) << 16) | ((value >> 16 & 0xFF) << 8)
            rs = (value >> 44) & 0xF
            wanted = {base | (rs * 16 + bit) for bit in range(16) if value >> bit & 1}
            chosen = [c for c, aff in enumerate(self.affinities) if aff in wanted]
        for target in chosen:
            self.raise_sgi(source, target, intid, group)


# -- Distributor -------------------------------------------------------------------------------
def _read_dist_ctlr(vgic: Vgic, cpu: int) -> int:
    return vgic.group_enables() | GICD_CTLR_ARE | GICD_CTLR_DS


def _dist_typer(vgic: Vgic, cpu: int) -> int:
    return (vgic.nr_irqs // 32 - 1) | GICD_TYPER_IDBITS | GICD_TYPER_A3V | GICD_TYPER_NO1N


def _raz(vgic: Vgic, cpu: int) -> int:
    return 0


def _ignore(vgic: Vgic, cpu: int, value: int) -> None:
    """RAZ/WI (e.g. GICD/GICR_IGRPMODR with a single Security state)."""


def distributor_regions(vgic: VgicV3) -> list[Region]:
    nr = vgic.nr_irqs
    return [
        register("GICD_CTLR", GICD_CTLR, _read_dist_ctlr, lambda g, c, v: g.set_group_enables(v)),
        register("GICD_TYPER", GICD_TYPER, _dist_typer),
        register("GICD_IIDR", GICD_IIDR, lambda g, c: GIC_IIDR_VALUE),
        register("GICD_TYPER2", GICD_TYPER2, _raz),
        *irq_regions(nr, Vgic.spi, sgi_pending_writable=True),
        per_irq("GICD_IROUTER", GICD_IROUTER, 64, nr, Vgic.spi, lambda g, i: i.mpidr,
                lambda g, i, v: g.update(i, mpidr=affinity(v))),
        *id_registers(GICD_PIDR4, GICD_V3_ID),
    ]


# -- redistributors ----------------------------------------------------------------------------
def _gicr_typer(vgic: VgicV3, cpu: int) -> int:
    """Affinity_Value [63:32], Processor_Number [23:8], Last [4]."""
    last = GICR_TYPER_LAST if cpu == len(vgic.vcpus) - 1 else 0
    aff = vgic.affinities[cpu]
    return ((aff >> 32 & 0xFF) << 56 | (aff & 0xFF_FFFF) << 32) | (cpu << 8) | last


def _read_waker(vgic: VgicV3, cpu: int) -> int:
    """ChildrenAsleep follows ProcessorSleep at once (no LPIs to quiesce)."""
    return (GICR_WAKER_PROCESSOR_SLEEP | GICR_WAKER_CHILDREN_ASLEEP) if vgic.sleeping[cpu] else 0


def _write_waker(vgic: VgicV3, cpu: int, value: int) -> None:
    vgic.sleeping[cpu] = bool(value & GICR_WAKER_PROCESSOR_SLEEP)


def _private(vgic: Vgic, cpu: int, intid: int) -> VgicIrq | None:
    return vgic.private[cpu][intid] if intid < VGIC_NR_PRIVATE_IRQS else None


def _in_sgi_frame(region: Region) -> Region:
    return Region(region.name, GICR_SGI_BASE + region.offset, region.length, region.read, region.write)


def redistributor_regions(vgic: VgicV3) -> list[Region]:
    return [
        register("GICR_CTLR", GICR_CTLR, _raz, _ignore),
        register("GICR_IIDR", GICR_IIDR, lambda g, c: GIC_IIDR_VALUE),
        register("GICR_TYPER", GICR_TYPER, _gicr_typer, size=8),
        register("GICR_WAKER", GICR_WAKER, _read_waker, _write_waker),
        *id_registers(GICR_PIDR4, GICR_V3_ID),
        *(_in_sgi_frame(r) for r in irq_regions(VGIC_NR_PRIVATE_IRQS, _private, sgi_pending_writable=True)),
        _in_sgi_frame(register("GICR_IGRPMODR0", GICR_IGRPMODR0, _raz, _ignore)),
    ]


# -- the CPU interface's system registers (ICC_*_EL1) -------------------------------------------
# accessor(vgic, cpu, is_write, value) -> value read (ignored for writes), None = UNDEFINED
IccAccessor = Callable[[VgicV3, int, bool, int], "int | None"]


def _rw(read: Callable[[VgicV3, int], int], write: Callable[[VgicV3, int, int], None]) -> IccAccessor:
    def access(vgic: VgicV3, cpu: int, is_write: bool, value: int) -> int | None:
        if is_write:
            write(vgic, cpu, value)
            return 0
        return read(vgic, cpu)

    return access


def _ro(read: Callable[[VgicV3, int], int]) -> IccAccessor:
    return lambda vgic, cpu, is_write, value: None if is_write else read(vgic, cpu)


def _wo(write: Callable[[VgicV3, int, int], None]) -> IccAccessor:
    def access(vgic: VgicV3, cpu: int, is_write: bool, value: int) -> int | None:
        if not is_write:
            return None
        write(vgic, cpu, value)
        return 0

    return access


def _read_icc_ctlr(vgic: VgicV3, cpu: int) -> int:
    c = vgic.cpus[cpu]
    return ICC_CTLR_RO | int(c.cbpr) | int(c.eoimode) << 1


def _write_icc_ctlr(vgic: VgicV3, cpu: int, value: int) -> None:
    c = vgic.cpus[cpu]
    c.cbpr = bool(value & ICC_CTLR_CBPR)
    c.eoimode = bool(value & ICC_CTLR_EOIMODE)


def _read_bpr1(vgic: VgicV3, cpu: int) -> int:
    """With CBPR set ICC_BPR1_EL1 reads as BPR0 + 1 (saturated) and ignores writes."""
    c = vgic.cpus[cpu]
    return min(c.bpr[0] + 1, 7) if c.cbpr else c.bpr[1]


def _set_grpen(group: int):
    def write(vgic: VgicV3, cpu: int, value: int) -> None:
        vgic.cpus[cpu].grpen[group] = bool(value & 1)

    return write


ICC_ACCESSORS: dict[str, IccAccessor] = {
    "ICC_PMR_EL1": _rw(lambda g, c: g.cpus[c].pmr, Vgic.set_pmr),
    "ICC_IAR0_EL1": _ro(lambda g, c: g.acknowledge(c, (0,), GIC_SPURIOUS)),
    "ICC_IAR1_EL1": _ro(lambda g, c: g.acknowledge(c, (1,), GIC_SPURIOUS)),
    "ICC_EOIR0_EL1": _wo(lambda g, c, v: g.end_of_interrupt(c, v & 0xFFFFFF, 0)),
    "ICC_EOIR1_EL1": _wo(lambda g, c, v: g.end_of_interrupt(c, v & 0xFFFFFF, 1)),
    "ICC_HPPIR0_EL1": _ro(lambda g, c: g.hppi_id(c, (0,), GIC_SPURIOUS)),
    "ICC_HPPIR1_EL1": _ro(lambda g, c: g.hppi_id(c, (1,), GIC_SPURIOUS)),
    "ICC_BPR0_EL1": _rw(lambda g, c: g.cpus[c].bpr[0], lambda g, c, v: g.cpus[c].set_bpr(0, v)),
    "ICC_BPR1_EL1": _rw(_read_bpr1, lambda g, c, v: g.cpus[c].write_bpr1(v)),
    "ICC_AP0R0_EL1": _rw(lambda g, c: g.cpus[c].apr[0], lambda g, c, v: g.set_active_priorities(c, 0, v)),
    "ICC_AP1R0_EL1": _rw(lambda g, c: g.cpus[c].apr[1], lambda g, c, v: g.set_active_priorities(c, 1, v)),
    "ICC_DIR_EL1": _wo(lambda g, c, v: g.deactivate(c, v & 0xFFFFFF)),
    "ICC_RPR_EL1": _ro(lambda g, c: g.cpus[c].running_priority),
    "ICC_SGI1R_EL1": _wo(lambda g, c, v: g.generate_sgi(c, v, 1)),
    "ICC_ASGI1R_EL1": _wo(lambda g, c, v: g.generate_sgi(c, v, 0)),
    "ICC_SGI0R_EL1": _wo(lambda g, c, v: g.generate_sgi(c, v, 0)),
    "ICC_CTLR_EL1": _rw(_read_icc_ctlr, _write_icc_ctlr),
    "ICC_SRE_EL1": _rw(lambda g, c: ICC_SRE_EL1_VALUE, _ignore),
    "ICC_IGRPEN0_EL1": _rw(lambda g, c: int(g.cpus[c].grpen[0]), _set_grpen(0)),
    "ICC_IGRPEN1_EL1": _rw(lambda g, c: int(g.cpus[c].grpen[1]), _set_grpen(1)),
}
"""Every ICC register this CPU interface implements; AP0R1-3/AP1R1-3 exist only with more
than 5 priority bits and are UNDEFINED here (as KVM injects)."""
