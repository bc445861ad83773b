"""``/dev/kvm`` and a VM: memory slots, capabilities, vcpus (virt/kvm/kvm_main.c, arm.c)."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass

from armvisor.arch.sysregs import MPIDR_HWID_BITMASK
from armvisor.cpu import PhysicalMemory
from armvisor.cpu.debug import NUM_BRPS, NUM_WRPS
from armvisor.cpu.timer import Clock, HostClock, InstructionClock
from armvisor.hyp import uapi as U
from armvisor.hyp.errors import KvmError, einval
from armvisor.hyp.io_bus import KvmIoBus
from armvisor.hyp.vcpu import Vcpu
from armvisor.hyp.vgic import VGIC_NR_PRIVATE_IRQS, Vgic, VgicV2, VgicV3

# Trace callback: (event, vcpu, detail) at the kvm_entry / kvm_exit points.
TraceFn = Callable[[str, Vcpu, object], None]

ARMVISOR_CAP_LEGACY_SINGLESTEP = 0x41560001
"""armvisor extension: enable_cap(ARMVISOR_CAP_LEGACY_SINGLESTEP, 1) reproduces the single-step
handling merged in v4.15 (synthesised debug exits) instead of today's architectural one."""

ARMVISOR_CAP_TRANSLATE = 0x41560002
"""armvisor extension: enable_cap(ARMVISOR_CAP_TRANSLATE, 0) runs every vcpu on decoded
instructions only (tier 0), without translated blocks and loops; 1 (the default) translates hot
code (armvisor.cpu.translate). Meant for comparing the tiers and for measuring."""

CLOCKS: dict[str, Callable[[], Clock]] = {"host": HostClock, "icount": InstructionClock}
"""The counter clocks a VM can select (armvisor.cpu.timer): host time, as KVM, is the default."""

CHECK_EXTENSION = {
    U.KVM_CAP_IRQCHIP: 1,
    U.KVM_CAP_USER_MEMORY: 1,
    U.KVM_CAP_SET_GUEST_DEBUG: 1,
    U.KVM_CAP_SET_GUEST_DEBUG2: U.KVM_GUESTDBG_VALID_MASK,
    U.KVM_CAP_GUEST_DEBUG_HW_BPS: NUM_BRPS,
    U.KVM_CAP_GUEST_DEBUG_HW_WPS: NUM_WRPS,
    U.KVM_CAP_ONE_REG: 1,
    U.KVM_CAP_ARM_PSCI: 1,
    U.KVM_CAP_ARM_PSCI_0_2: 1,
    U.KVM_CAP_IMMEDIATE_EXIT: 1,
    U.KVM_CAP_ARM_NISV_TO_USER: 1,
    U.KVM_CAP_ARM_SYSTEM_SUSPEND: 1,
}


class Kvm:
    """The ``/dev/kvm`` handle."""

    def check_extension(self, cap: int) -> int:
        """KVM_CHECK_EXTENSION: 0 when unsupported, else the capability's value."""
        return CHECK_EXTENSION.get(cap, 0)

    def create_vm(self) -> "Vm":
        return Vm()


@dataclass
class MemorySlot:
    slot: int
    guest_phys_addr: int
    memory_size: int
    flags: int
    userspace: bytearray


class Vm:
    """A VM: guest physical memory from memory slots, and its vcpus."""

    def __init__(self) -> None:
        self.phys = PhysicalMemory()
        self.slots: dict[int, MemorySlot] = {}
        self.vcpus: list[Vcpu] = []
        self.nisv_to_user = False
        self.system_suspend_enabled = False
        self.legacy_single_step = False
        self.translate = True
        self.trace: TraceFn | None = None
        self.clock: Clock = HostClock()
        self.io_bus = KvmIoBus()
        self.vgic: Vgic | None = None

    def check_extension(self, cap: int) -> int:
        return CHECK_EXTENSION.get(cap, 0)

    def set_user_memory_region(self, slot: int, guest_phys_addr: int, memory_size: int,
                               flags: int = 0, userspace: bytearray | None = None) -> None:
        """KVM_SET_USER_MEMORY_REGION; ``memory_size`` 0 deletes the slot. ``userspace`` (a
        bytearray of ``memory_size`` bytes) becomes the guest RAM, shared, never copied."""
        if flags & ~(U.KVM_MEM_LOG_DIRTY_PAGES | U.KVM_MEM_READONLY):
            raise einval(f"unknown memory slot flags 0x{flags:x}")
        if guest_phys_addr % 4096 or memory_size % 4096:
            raise einval("memory slots must be page aligned")
        old = self.slots.pop(slot, None)
        if old is not None:
            self.phys.remove_ram(old.guest_phys_addr)
        if memory_size == 0:
            return
        if userspace is None:
            userspace = bytearray(memory_size)
        elif not isinstance(userspace, bytearray) or len(userspace) != memory_size:
            raise einval("userspace must be a bytearray of exactly memory_size bytes")
        try:
            self.phys.add_ram(guest_phys_addr, userspace, readonly=bool(flags & U.KVM_MEM_READONLY))
        except ValueError as err:
            if old is not None:
                self.phys.add_ram(old.guest_phys_addr, old.userspace, bool(old.flags & U.KVM_MEM_READONLY))
                self.slots[slot] = old
            raise einval(str(err)) from None
        self.slots[slot] = MemorySlot(slot, guest_phys_addr, memory_size, flags, userspace)

    def enable_cap(self, cap: int, *args: int) -> None:
        """KVM_ENABLE_CAP on the VM."""
        if cap == U.KVM_CAP_ARM_NISV_TO_USER:
            self.nisv_to_user = True
        elif cap == U.KVM_CAP_ARM_SYSTEM_SUSPEND:
            self.system_suspend_enabled = True
        elif cap == ARMVISOR_CAP_LEGACY_SINGLESTEP:
            self.legacy_single_step = bool(args[0]) if args else True
        elif cap == ARMVISOR_CAP_TRANSLATE:
            self.translate = bool(args[0]) if args else True
            for vcpu in self.vcpus:
                vcpu.cpu.tier1.enabled = self.translate
                vcpu.cpu.flush_decoded()
        else:
            raise einval(f"capability {cap} cannot be enabled")

    def create_vcpu(self, vcpu_id: int) -> Vcpu:
        if any(v.vcpu_id == vcpu_id for v in self.vcpus):
            raise KvmError(errno.EEXIST, f"vcpu {vcpu_id} exists")
        if not 0 <= vcpu_id < 512:
            raise einval(f"vcpu id {vcpu_id} out of range")
        if self.vgic is not None:
            raise KvmError(errno.EBUSY, "vcpus must be created before the vGIC")
        vcpu = Vcpu(self, vcpu_id)
        vcpu.cpu.tier1.enabled = self.translate
        self.vcpus.append(vcpu)
        return vcpu

    def flush_icache_range(self, start: int, size: int) -> None:
        """armvisor's stand-in for the host's instruction-cache maintenance (``__clear_cache``)
        that a VMM does after writing instructions into guest RAM, as QEMU's
        ``cpu_flush_icache_range`` after inserting a breakpoint: every vcpu forgets the
        instructions it decoded (``start``/``size`` name the range; all are dropped)."""
        for vcpu in self.vcpus:
            vcpu.cpu.flush_decoded()

    # -- the counter clock and the in-kernel irqchip -------------------------------------------
    def set_clock(self, kind: str) -> None:
        """armvisor extension: the system counter's clock, "host" (default) or "icount" (one
        tick per instruction executed: a deterministic, replayable run). The counter restarts
        at 0."""
        if kind not in CLOCKS:
            raise einval(f"unknown clock {kind!r} (choose from {', '.join(CLOCKS)})")
        self.clock = CLOCKS[kind]()
        for v in self.vcpus:
            v.cpu.clock = self.clock

    def create_vgic(self, version: int, dist_base: int = 0x0800_0000, cpuif_base: int = 0x0801_0000,
                    redist_base: int = 0x080A_0000, nr_irqs: int = 288) -> None:
        """KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V2/V3) with its addresses and
        KVM_DEV_ARM_VGIC_CTRL_INIT, in one call after every vcpu exists: GICv2 (Distributor at
        ``dist_base``, CPU interface at ``cpuif_base``) or GICv3 (Distributor, redistributors
        from ``redist_base``) with ``nr_irqs`` interrupts. Guest accesses to its frames are then
        handled in hyp."""
        if self.vgic is not None:
            raise KvmError(errno.EEXIST, "the VM already has a vGIC")
        if not self.vcpus:
            raise einval("create the vcpus before the vGIC")
        try:
            if version == 2:
                vgic: Vgic = VgicV2(self, dist_base, cpuif_base, nr_irqs)
            elif version == 3:
                vgic = VgicV3(self, dist_base, redist_base, nr_irqs)
            else:
                raise KvmError(errno.ENODEV, f"GIC version {version} (armvisor has 2 and 3)")
            frames = vgic.frames()
            for base, frame in frames:
                if any(self.phys.find(a) is not None for a in (base, base + frame.size - 1)):
                    raise ValueError(f"GIC frame at 0x{base:x} overlaps guest RAM")
            bus = KvmIoBus()
            for base, frame in frames:
                bus.register(base, frame.size, frame)
        except ValueError as err:
            raise einval(str(err)) from None
        for r in bus.ranges:
            self.io_bus.register(r.base, r.size, r.device)
        self.vgic = vgic

    def irq_line(self, intid: int, level: bool) -> None:
        """KVM_IRQ_LINE for an SPI (INTID 32 up): the input level of a device's interrupt."""
        vgic = self.vgic
        if vgic is None:
            raise KvmError(errno.ENXIO, "no in-kernel irqchip (create_vgic)")
        if not VGIC_NR_PRIVATE_IRQS <= intid < VGIC_NR_PRIVATE_IRQS + len(vgic.spis):
            raise einval(f"INTID {intid} is not an SPI of this vGIC (32..{31 + len(vgic.spis)})")
        vgic.set_level(vgic.spis[intid - VGIC_NR_PRIVATE_IRQS], bool(level))

    # -- services for vcpus ------------------------------------------------------------------
    def vcpu_by_mpidr(self, mpidr: int) -> Vcpu | None:
        return next((v for v in self.vcpus if v.mpidr & MPIDR_HWID_BITMASK == mpidr), None)

    def prepare_system_event(self) -> None:
        """kvm_prepare_system_event: every vcpu stops (powered off) before userspace acts."""
        for v in self.vcpus:
            v.powered_off = True

    def can_wake(self, vcpu: Vcpu) -> bool:
        """Whether anything in the VM could wake a halted vcpu: an interrupt pending for it, an
        armed timer of its own, or another vcpu that is running (it could raise an SGI or CPU_ON
        this one). Userspace's own devices (KVM_IRQ_LINE) are for the VMM to account for."""
        if not vcpu.powered_off and (vcpu.interrupt_pending() or vcpu.timer.next_deadline() is not None):
            return True
        return any(not v.powered_off for v in self.vcpus if v is not vcpu)
