"""The in-kernel interrupt controller: KVM's vGIC (virt/kvm/arm/vgic/), GICv2 or GICv3.

``Vm.create_vgic`` builds one (KVM_CREATE_DEVICE with KVM_DEV_TYPE_ARM_VGIC_V2/V3 plus its
address attributes and KVM_DEV_ARM_VGIC_CTRL_INIT in one step); its frames then sit on the VM's
io bus, so guest accesses complete inside hyp. The architected timer's PPIs and
``Vm.irq_line`` (KVM_IRQ_LINE) feed it; the vcpu run loop samples :meth:`Vgic.lines`.
"""

from armvisor.hyp.vgic.irq import INTID_PTIMER, INTID_VTIMER, VGIC_NR_PRIVATE_IRQS
from armvisor.hyp.vgic.v2 import VgicV2
from armvisor.hyp.vgic.v3 import ICC_ACCESSORS, VgicV3
from armvisor.hyp.vgic.vgic import Vgic

__all__ = ["Vgic", "VgicV2", "VgicV3", "ICC_ACCESSORS", "INTID_VTIMER", "INTID_PTIMER",
           "VGIC_NR_PRIVATE_IRQS"]
