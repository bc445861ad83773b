"""One interrupt as the vGIC tracks it (KVM's ``struct vgic_irq``, include/kvm/arm_vgic.h)."""

from __future__ import annotations

from dataclasses import dataclass

VGIC_NR_SGIS = 16
VGIC_NR_PRIVATE_IRQS = 32
VGIC_PRI_BITS = 5  # implemented priority bits, as KVM's vgic (priorities step by 8)
VGIC_PRI_MASK = (0xFF << (8 - VGIC_PRI_BITS)) & 0xFF
GIC_SPURIOUS = 1023  # no interrupt of sufficient priority
GIC_SPURIOUS_OTHER_GROUP = 1022  # the highest one belongs to the other group (GICv2 IAR)
INTID_VTIMER = 27
INTID_PTIMER = 30


@dataclass(eq=False)
class VgicIrq:
    """State of an interrupt: SGIs/PPIs exist once per vcpu (``owner``), SPIs once per VM.

    Pending is the edge latch or a software write (``pending_latch``), or the input level for a
    level-sensitive interrupt; a GICv2 SGI is pending once per source CPU (``sources``).
    """

    intid: int
    owner: int | None = None
    enabled: bool = False
    pending_latch: bool = False
    line_level: bool = False
    active: bool = False
    edge: bool = False
    priority: int = 0
    group: int = 0
    targets: int = 0  # GICv2 GICD_ITARGETSR byte
    mpidr: int = 0  # GICv3 GICD_IROUTER affinity (Aff3:Aff2:Aff1:Aff0 as in MPIDR_EL1)
    sources: int = 0  # GICv2 SGI: pending per source CPU
    active_source: int = 0  # GICv2 SGI: the source of the activation

    @property
    def pending(self) -> bool:
        return self.pending_latch or bool(self.sources) or (self.line_level and not self.edge)
