"""The vGIC core shared by GICv2 and GICv3 emulation (virt/kvm/arm/vgic/vgic.c, vgic-mmio.c).

Distributor state (group enables, the interrupts), each vcpu's CPU interface (priority mask,
binary points, group enables, EOI mode, active priorities) and the rules both architecture
versions share (ARM IHI 0048B chapter 3, IHI 0069 chapter 4):

* an interrupt is *signalled* to a vcpu when it is pending, enabled, not active, targets the
  vcpu, its group is enabled in the Distributor and in the CPU interface, its priority is
  higher (numerically lower) than the priority mask and its group priority higher than the
  running priority (preemption, with the binary point of its group);
* acknowledge (IAR) makes the highest-priority pending interrupt active and sets its group
  priority in the active priorities; EOI drops the running priority (the highest active
  priority) and, with EOImode 0, deactivates the interrupt; with EOImode 1, DIR deactivates.

The vcpu's virtual IRQ/FIQ inputs follow :meth:`Vgic.lines`, which the run loop samples
between chunks. Interrupts that are pending are kept in a set so sampling stays cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from armvisor.hyp.vgic.irq import (
    GIC_SPURIOUS,
    VGIC_NR_PRIVATE_IRQS,
    VGIC_NR_SGIS,
    VGIC_PRI_BITS,
    VGIC_PRI_MASK,
    VgicIrq,
)

if TYPE_CHECKING:
    from armvisor.hyp.vcpu import Vcpu
    from armvisor.hyp.vm import Vm

BPR0_MIN = 7 - VGIC_PRI_BITS  # group 0 binary point: group priority is [7:BPR0+1]
BPR1_MIN = BPR0_MIN + 1  # group 1 binary point: group priority is [7:BPR1]
PRIORITY_IDLE = 0xFF
GIC_SPECIAL_INTIDS = 1020
APR_SHIFT = 8 - VGIC_PRI_BITS  # one active-priority bit per implemented priority level


class VgicCpu:
    """One vcpu's CPU interface (the GICC_*/ICC_* state; KVM keeps it in the VMCR and APRs)."""

    def __init__(self) -> None:
        self.grpen = [False, False]
        self.pmr = 0
        self.bpr = [BPR0_MIN, BPR1_MIN]
        self.cbpr = False
        self.eoimode = False
        self.fiqen = False  # GICv2 GICC_CTLR.FIQEn
        self.ackctl = False  # GICv2 GICC_CTLR.AckCtl
        self.bypass = 0  # GICv2 GICC_CTLR FIQBypDis/IRQBypDis bits: kept, no effect here
        self.apr = [0, 0]  # active priorities per group, bit n = group priority n << APR_SHIFT

    def group_priority(self, priority: int, group: int) -> int:
        """The priority's group-priority field for preemption (IHI 0048B 3.3.3)."""
        shift = self.bpr[1] if group == 1 and not self.cbpr else self.bpr[0] + 1
        return priority & (0xFF << shift) & 0xFF

    @property
    def running_priority(self) -> int:
        """The highest active group priority, 0xFF when idle (GICC_RPR / ICC_RPR_EL1)."""
        active = self.apr[0] | self.apr[1]
        if not active:
            return PRIORITY_IDLE
        return ((active & -active).bit_length() - 1) << APR_SHIFT

    def set_bpr(self, group: int, value: int) -> None:
        """Binary point writes below the implemented minimum read back as the minimum."""
        self.bpr[group] = max(value & 7, BPR1_MIN if group else BPR0_MIN)

    def write_bpr1(self, value: int) -> None:
        """GICC_ABPR / ICC_BPR1_EL1: the Group 1 binary point, ignored while CBPR is set."""
        if not self.cbpr:
            self.set_bpr(1, value)

    def drop_priority(self, group: int) -> None:
        """Priority drop: clear the highest active priority (preferring ``group``'s bit)."""
        active = self.apr[0] | self.apr[1]
        if not active:
            return
        bit = active & -active
        if self.apr[group] & bit:
            self.apr[group] &= ~bit
        else:
            self.apr[1 - group] &= ~bit


class Vgic:
    """State and rules shared by both versions; the subclasses add the register interfaces."""

    version = 0

    def __init__(self, vm: "Vm", nr_irqs: int) -> None:
        if nr_irqs % 32 or not 64 <= nr_irqs <= 1024:
            raise ValueError(f"nr_irqs {nr_irqs} must be a multiple of 32 between 64 and 1024")
        self.vm = vm
        self.nr_irqs = nr_irqs  # INTIDs 1020-1023 are special: never interrupts
        self.lock = threading.RLock()
        self.enabled = [False, False]  # GICD_CTLR EnableGrp0/EnableGrp1
        self.vcpus: list["Vcpu"] = list(vm.vcpus)
        self.cpus = [VgicCpu() for _ in self.vcpus]
        self.private = [[self._new_private(i, n) for n in range(VGIC_NR_PRIVATE_IRQS)]
                        for i in range(len(self.vcpus))]
        self.spis = [VgicIrq(n) for n in range(VGIC_NR_PRIVATE_IRQS, min(nr_irqs, GIC_SPECIAL_INTIDS))]
        self.pending: set[VgicIrq] = set()

    def _new_private(self, owner: int, intid: int) -> VgicIrq:
        """SGIs are edge-triggered and enabled at reset, PPIs level (kvm_vgic_vcpu_init)."""
        sgi = intid < VGIC_NR_SGIS
        return VgicIrq(intid, owner, enabled=sgi, edge=sgi)

    # -- lookup ----------------------------------------------------------------------------------
    def irq(self, cpu: int, intid: int) -> VgicIrq | None:
        """The interrupt ``intid`` as vcpu ``cpu`` sees it (private ones are banked)."""
        if intid < VGIC_NR_PRIVATE_IRQS:
            return self.private[cpu][intid]
        if intid - VGIC_NR_PRIVATE_IRQS < len(self.spis):
            return self.spis[intid - VGIC_NR_PRIVATE_IRQS]
        return None

    def spi(self, cpu: int, intid: int) -> VgicIrq | None:
        """Only SPIs (the GICv3 Distributor with affinity routing: private ones are RAZ/WI)."""
        return self.irq(cpu, intid) if intid >= VGIC_NR_PRIVATE_IRQS else None

    def index_of(self, vcpu: "Vcpu") -> int:
        return self.vcpus.index(vcpu)

    def targets(self, irq: VgicIrq, cpu: int) -> bool:
        """Whether ``irq`` is forwarded to vcpu ``cpu`` (version-specific for SPIs)."""
        raise NotImplementedError

    def fiq_group(self, cpu: VgicCpu, group: int) -> bool:
        """Whether an interrupt of ``group`` is signalled as FIQ."""
        raise NotImplementedError

    # -- state changes ---------------------------------------------------------------------------
    def changed(self, irq: VgicIrq) -> None:
        """Call after any change of ``irq``: keep the pending set and wake its targets."""
        if irq.pending:
            self.pending.add(irq)
            for cpu, vcpu in enumerate(self.vcpus):
                if irq.owner == cpu or irq.owner is None and self.targets(irq, cpu):
                    vcpu.kick()
        else:
            self.pending.discard(irq)

    def set_level(self, irq: VgicIrq, level: bool) -> None:
        """An interrupt input changes: a level one follows it, an edge one latches a rising edge
        (vgic_update_irq_pending / kvm_vgic_inject_irq)."""
        with self.lock:
            if irq.edge and level and not irq.line_level:
                irq.pending_latch = True
            irq.line_level = level
            self.changed(irq)

    def set_private_level(self, vcpu: "Vcpu", intid: int, level: bool) -> None:
        """A PPI input of one vcpu (the architected timers)."""
        irq = self.private[self.index_of(vcpu)][intid]
        if irq.line_level != level:
            self.set_level(irq, level)

    def set_pending(self, irq: VgicIrq, pending: bool) -> None:
        """ISPENDR/ICPENDR: the latch; a level interrupt stays pending while its input is high."""
        with self.lock:
            irq.pending_latch = pending
            if not pending:
                irq.sources = 0
            self.changed(irq)

    def set_active(self, irq: VgicIrq, active: bool) -> None:
        with self.lock:
            irq.active = active
            self.changed(irq)

    def update(self, irq: VgicIrq, **fields: object) -> None:
        """Set plain fields (enable, priority, group, config, targets, routing)."""
        with self.lock:
            for name, value in fields.items():
                setattr(irq, name, value)
            self.changed(irq)

    # -- the CPU interface ------------------------------------------------------------------------
    def _candidates(self, cpu: int) -> Iterable[VgicIrq]:
        grpen = self.cpus[cpu].grpen
        enabled = self.enabled
        for irq in self.pending:
            if (irq.enabled and not irq.active and enabled[irq.group] and grpen[irq.group]
                    and (irq.owner == cpu if irq.owner is not None else self.targets(irq, cpu))):
                yield irq

    def highest_pending(self, cpu: int) -> VgicIrq | None:
        """The highest-priority pending interrupt for the vcpu (lowest INTID on a tie)."""
        return min(self._candidates(cpu), key=lambda irq: (irq.priority, irq.intid), default=None)

    def _preempts(self, cpu: int, irq: VgicIrq) -> bool:
        c = self.cpus[cpu]
        return irq.priority < c.pmr and c.group_priority(irq.priority, irq.group) < c.running_priority

    def lines(self, vcpu: "Vcpu") -> tuple[bool, bool]:
        """(IRQ, FIQ): what the CPU interface signals to the vcpu now."""
        if not self.pending:
            return False, False
        with self.lock:
            cpu = self.index_of(vcpu)
            irq = self.highest_pending(cpu)
            if irq is None or not self._preempts(cpu, irq):
                return False, False
            fiq = irq.group == 0 and self.fiq_group(self.cpus[cpu], 0)
            return not fiq, fiq

    def hppi_id(self, cpu: int, groups: tuple[int, ...], other_group_id: int) -> int:
        """GICC_HPPIR/ICC_HPPIRn_EL1: the highest-priority pending interrupt's ID (with the
        source CPU for a GICv2 SGI), ``other_group_id`` when it is of a group not in ``groups``,
        1023 when there is none."""
        with self.lock:
            irq = self.highest_pending(cpu)
            if irq is None:
                return GIC_SPURIOUS
            if irq.group not in groups:
                return other_group_id
            return irq.intid | (self._lowest_source(irq) << 10 if irq.sources else 0)

    @staticmethod
    def _lowest_source(irq: VgicIrq) -> int:
        return (irq.sources & -irq.sources).bit_length() - 1

    def acknowledge(self, cpu: int, groups: tuple[int, ...], other_group_id: int) -> int:
        """GICC_IAR/ICC_IARn_EL1: activate the highest-priority pending interrupt if it has
        sufficient priority and is of an allowed group; else a special ID."""
        with self.lock:
            irq = self.highest_pending(cpu)
            if irq is None or not self._preempts(cpu, irq):
                return GIC_SPURIOUS
            if irq.group not in groups:
                return other_group_id
            value = irq.intid
            if irq.sources:
                source = self._lowest_source(irq)
                irq.sources &= ~(1 << source)
                irq.active_source = source
                value |= source << 10
            else:
                irq.pending_latch = False
            irq.active = True
            c = self.cpus[cpu]
            c.apr[irq.group] |= 1 << (c.group_priority(irq.priority, irq.group) >> APR_SHIFT)
            self.changed(irq)
            return value

    def end_of_interrupt(self, cpu: int, intid: int, group: int) -> None:
        """GICC_EOIR/ICC_EOIRn_EL1 for ``intid`` (the caller strips other fields): priority
        drop, and deactivation when EOImode is 0. Special INTIDs have no effect."""
        with self.lock:
            if intid >= GIC_SPECIAL_INTIDS:
                return
            c = self.cpus[cpu]
            c.drop_priority(group)
            if not c.eoimode:
                self.deactivate(cpu, intid)

    def deactivate(self, cpu: int, intid: int) -> None:
        """GICC_DIR/ICC_DIR_EL1."""
        with self.lock:
            irq = self.irq(cpu, intid) if intid < GIC_SPECIAL_INTIDS else None
            if irq is not None:
                irq.active = False
                self.changed(irq)

    # -- software generated interrupts -----------------------------------------------------------
    def raise_sgi(self, source: int, target: int, intid: int, group: int | None) -> None:
        """Make SGI ``intid`` pending on ``target`` from ``source``: per source for GICv2
        (``group`` None), else only when the SGI is configured in ``group`` (GICv3
        ICC_SGI0R/SGI1R, vgic_v3_dispatch_sgi)."""
        with self.lock:
            irq = self.private[target][intid]
            if group is None:
                irq.sources |= 1 << source
            elif irq.group == group:
                irq.pending_latch = True
            self.changed(irq)

    def has_pending(self, vcpu: "Vcpu") -> bool:
        """kvm_vgic_vcpu_pending_irq: would the vcpu be signalled (a WFI wake-up)?"""
        irq, fiq = self.lines(vcpu)
        return irq or fiq

    def priority_field(self, value: int) -> int:
        """A priority as stored: the unimplemented low bits read as zero."""
        return value & VGIC_PRI_MASK

    def group_enables(self) -> int:
        """GICD_CTLR EnableGrp0 [0] and EnableGrp1 [1] as read."""
        return int(self.enabled[0]) | int(self.enabled[1]) << 1

    def set_group_enables(self, value: int) -> None:
        """GICD_CTLR EnableGrp0 [0] and EnableGrp1 [1] (both versions, one Security state)."""
        with self.lock:
            self.enabled = [bool(value & 1), bool(value & 2)]
            for irq in list(self.pending):
                self.changed(irq)

    def set_pmr(self, cpu: int, value: int) -> None:
        """GICC_PMR / ICC_PMR_EL1."""
        self.cpus[cpu].pmr = self.priority_field(value & 0xFF)

    def set_active_priorities(self, cpu: int, group: int, value: int) -> None:
        """GICC_APR0/NSAPR0, ICC_AP0R0/AP1R0_EL1 (written to restore a saved state)."""
        self.cpus[cpu].apr[group] = value & 0xFFFFFFFF
