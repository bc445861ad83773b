"""The per-interrupt register arrays the GICv2 Distributor, the GICv3 Distributor and the GICv3
redistributors' SGI_base frame share, at the same offsets (IHI 0048B 4.3, IHI 0069 12.9/12.11):
IGROUPR, ISENABLER/ICENABLER, ISPENDR/ICPENDR, ISACTIVER/ICACTIVER (write 1 to set/clear),
IPRIORITYR (one byte each, unimplemented low bits RAZ/WI) and ICFGR (SGIs always edge)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from armvisor.hyp.vgic.irq import VGIC_NR_SGIS, VgicIrq
from armvisor.hyp.vgic.regions import FieldSet, Lookup, Region, per_irq

if TYPE_CHECKING:
    from armvisor.hyp.vgic.vgic import Vgic

GICD_IGROUPR = 0x080
GICD_ISENABLER = 0x100
GICD_ICENABLER = 0x180
GICD_ISPENDR = 0x200
GICD_ICPENDR = 0x280
GICD_ISACTIVER = 0x300
GICD_ICACTIVER = 0x380
GICD_IPRIORITYR = 0x400
GICD_ICFGR = 0xC00
ICFGR_EDGE = 0b10


def _when_set(action: FieldSet, sgi_writable: bool = True) -> FieldSet:
    """A write-1 field: 0 has no effect (and GICv2 SGI pending bits are WI, IHI 0048B 4.3.7)."""

    def put(vgic: "Vgic", irq: VgicIrq, value: int) -> None:
        if value and (sgi_writable or irq.intid >= VGIC_NR_SGIS):
            action(vgic, irq, value)

    return put


def _set_config(vgic: "Vgic", irq: VgicIrq, value: int) -> None:
    if irq.intid >= VGIC_NR_SGIS:
        vgic.update(irq, edge=bool(value & ICFGR_EDGE))


def irq_regions(nr_irqs: int, lookup: Lookup, sgi_pending_writable: bool) -> list[Region]:
    """The shared arrays over ``nr_irqs`` interrupts, resolved through ``lookup``."""
    return [
        per_irq("IGROUPR", GICD_IGROUPR, 1, nr_irqs, lookup, lambda g, i: i.group,
                lambda g, i, v: g.update(i, group=v)),
        per_irq("ISENABLER", GICD_ISENABLER, 1, nr_irqs, lookup, lambda g, i: int(i.enabled),
                _when_set(lambda g, i, v: g.update(i, enabled=True))),
        per_irq("ICENABLER", GICD_ICENABLER, 1, nr_irqs, lookup, lambda g, i: int(i.enabled),
                _when_set(lambda g, i, v: g.update(i, enabled=False))),
        per_irq("ISPENDR", GICD_ISPENDR, 1, nr_irqs, lookup, lambda g, i: int(i.pending),
                _when_set(lambda g, i, v: g.set_pending(i, True), sgi_pending_writable)),
        per_irq("ICPENDR", GICD_ICPENDR, 1, nr_irqs, lookup, lambda g, i: int(i.pending),
                _when_set(lambda g, i, v: g.set_pending(i, False), sgi_pending_writable)),
        per_irq("ISACTIVER", GICD_ISACTIVER, 1, nr_irqs, lookup, lambda g, i: int(i.active),
                _when_set(lambda g, i, v: g.set_active(i, True))),
        per_irq("ICACTIVER", GICD_ICACTIVER, 1, nr_irqs, lookup, lambda g, i: int(i.active),
                _when_set(lambda g, i, v: g.set_active(i, False))),
        per_irq("IPRIORITYR", GICD_IPRIORITYR, 8, nr_irqs, lookup, lambda g, i: i.priority,
                lambda g, i, v: g.update(i, priority=g.priority_field(v))),
        per_irq("ICFGR", GICD_ICFGR, 2, nr_irqs, lookup, lambda g, i: ICFGR_EDGE if i.edge else 0,
                _set_config),
    ]
