"""``/dev/kvm`` and a VM: memory slots, capabilities, vcpus (virt/kvm/kvm_main.c, arm.c)."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass

from armvisor.cpu import PhysicalMemory
from armvisor.cpu.debug import NUM_BRPS, NUM_WRPS
from armvisor.hyp import uapi as U
from armvisor.hyp.errors import KvmError, einval
from armvisor.hyp.vcpu import Vcpu

# Trace callback: (event, vcpu, detail) at the kvm_entry / kvm_exit points.
TraceFn = Callable[[str, Vcpu, object], None]

ARMVISOR_CAP_LEGACY_SINGLESTEP = 0x41560001
"""armvisor extension: enable_cap(ARMVISOR_CAP_LEGACY_SINGLESTEP, 1) reproduces the single-step
handling merged in v4.15 (synthesised debug exits) instead of today's architectural one."""

CHECK_EXTENSION = {
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
        self.trace: TraceFn | None = None

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
        else:
            raise einval(f"capability {cap} cannot be enabled")

    def create_vcpu(self, vcpu_id: int) -> Vcpu:
        if any(v.vcpu_id == vcpu_id for v in self.vcpus):
            raise KvmError(errno.EEXIST, f"vcpu {vcpu_id} exists")
        if not 0 <= vcpu_id < 512:
            raise einval(f"vcpu id {vcpu_id} out of range")
        vcpu = Vcpu(self, vcpu_id)
        self.vcpus.append(vcpu)
        return vcpu

    # -- services for vcpus ------------------------------------------------------------------
    def vcpu_by_mpidr(self, mpidr: int) -> Vcpu | None:
        return next((v for v in self.vcpus if v.mpidr & 0xFF00FFFFFF == mpidr), None)

    def prepare_system_event(self) -> None:
        """kvm_prepare_system_event: every vcpu stops (powered off) before userspace acts."""
        for v in self.vcpus:
            v.powered_off = True

    def wake(self, vcpu: Vcpu) -> None:
        vcpu.wake()

    def can_wake(self, vcpu: Vcpu) -> bool:
        """Whether anything could wake a halted vcpu: another vcpu that is running (it could
        CPU_ON this one from another thread). Interrupts arrive with the vGIC."""
        return any(not v.powered_off for v in self.vcpus if v is not vcpu)
