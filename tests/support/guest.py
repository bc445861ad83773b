"""Small guests for hyp tests: an assembly snippet placed at the start of RAM on a fresh VM."""

from __future__ import annotations

from armvisor import kvm as K
from armvisor.toolchain import assemble

RAM = 0x4000_0000
RAM_SIZE = 0x20_0000
UART = 0x0900_0000


def make_guest(source: str, features=(K.KVM_ARM_VCPU_PSCI_0_2,), ram_size: int = RAM_SIZE,
               vm: K.Vm | None = None) -> tuple[K.Vm, K.Vcpu]:
    """A VM with RAM at 0x4000_0000 holding ``source`` assembled, one vcpu entering it at EL1h
    with SP_EL1 at the top of RAM."""
    code = assemble(source)
    if vm is None:
        vm = K.Kvm().create_vm()
        ram = bytearray(ram_size)
        ram[:len(code)] = code
        vm.set_user_memory_region(0, RAM, ram_size, userspace=ram)
    vcpu = vm.create_vcpu(len(vm.vcpus))
    vcpu.init(features)
    vcpu.set_one_reg(K.KVM_REG_ARM64_PC, RAM)
    vcpu.set_one_reg(K.KVM_REG_ARM64_SP_EL1, RAM + ram_size)
    return vm, vcpu


def pc(vcpu: K.Vcpu) -> int:
    return vcpu.get_one_reg(K.KVM_REG_ARM64_PC)


def x(vcpu: K.Vcpu, n: int) -> int:
    return vcpu.get_one_reg(K.arm64_core_x(n))


def ec(run: K.KvmRun) -> int:
    return run.debug.arch.hsr >> 26
