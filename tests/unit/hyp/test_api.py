"""The KVM-shaped API surface: ids, errno behaviour and validation (api.rst 4.68, 4.82, 4.87)."""

from __future__ import annotations

import errno

import pytest

from armvisor import kvm as K


@pytest.fixture
def vm() -> K.Vm:
    vm = K.Kvm().create_vm()
    vm.set_user_memory_region(0, 0x4000_0000, 0x10000)
    return vm


def test_constants_match_linux_uapi() -> None:
    # Values from include/uapi/linux/kvm.h and arch/arm64/include/uapi/asm/kvm.h.
    assert (K.KVM_EXIT_DEBUG, K.KVM_EXIT_MMIO, K.KVM_EXIT_INTR, K.KVM_EXIT_SYSTEM_EVENT,
            K.KVM_EXIT_ARM_NISV) == (4, 6, 10, 24, 28)
    assert K.KVM_REG_ARM_CORE == 0x00100000
    assert K.arm64_core_x(0) == 0x6030000000100000
    assert K.KVM_REG_ARM64_SP == 0x603000000010003E
    assert K.KVM_REG_ARM64_PC == 0x6030000000100040
    assert K.KVM_REG_ARM64_PSTATE == 0x6030000000100042
    assert K.arm64_sys_reg(3, 0, 1, 0, 0) == 0x603000000013C080  # SCTLR_EL1
    assert K.KVM_GUESTDBG_USE_HW == 0x20000 and K.KVM_GUESTDBG_USE_SW_BP == 0x10000


def test_run_before_init_is_enoexec(vm: K.Vm) -> None:
    vcpu = vm.create_vcpu(0)
    with pytest.raises(K.KvmError) as err:
        vcpu.run(max_insns=1)
    assert err.value.errno == errno.ENOEXEC


def test_init_reset_state(vm: K.Vm) -> None:
    vcpu = vm.create_vcpu(0x123)
    vcpu.init([K.KVM_ARM_VCPU_PSCI_0_2])
    assert vcpu.get_one_reg(K.KVM_REG_ARM64_PSTATE) == 0x3C5
    assert vcpu.get_one_reg(K.KVM_REG_ARM64_PC) == 0
    # reset_mpidr: Aff0 = id[3:0], Aff1 = id[11:4]
    assert vcpu.get_one_reg(K.arm64_sys_reg(3, 0, 0, 0, 5)) == 0x80000000 | 0x3 | (0x12 << 8)


def test_init_feature_errors(vm: K.Vm) -> None:
    vcpu = vm.create_vcpu(0)
    with pytest.raises(K.KvmError) as err:
        vcpu.init([40])
    assert err.value.errno == errno.ENOENT
    vcpu.init([K.KVM_ARM_VCPU_PSCI_0_2])
    with pytest.raises(K.KvmError) as err:
        vcpu.init([])
    assert err.value.errno == errno.EINVAL


def test_one_reg_core_ids_and_errors(vm: K.Vm) -> None:
    vcpu = vm.create_vcpu(0)
    vcpu.init([K.KVM_ARM_VCPU_PSCI_0_2])
    for n in range(31):
        vcpu.set_one_reg(K.arm64_core_x(n), 0x1000 + n)
    assert [vcpu.get_one_reg(K.arm64_core_x(n)) for n in range(31)] == [0x1000 + n for n in range(31)]
    vcpu.set_one_reg(K.KVM_REG_ARM64_SP, 0x1111)      # SP_EL0
    vcpu.set_one_reg(K.KVM_REG_ARM64_SP_EL1, 0x2222)
    assert vcpu.cpu.state.sp == 0x2222                # EL1h uses SP_EL1
    assert vcpu.get_one_reg(K.KVM_REG_ARM64_SP) == 0x1111
    with pytest.raises(K.KvmError) as err:            # wrong size for a 64-bit register
        vcpu.get_one_reg(K.KVM_REG_ARM64 | K.KVM_REG_SIZE_U32 | K.KVM_REG_ARM_CORE | 0x40)
    assert err.value.errno == errno.EINVAL
    with pytest.raises(K.KvmError) as err:            # no such core register
        vcpu.get_one_reg(K.arm64_core_reg(0x1F0))
    assert err.value.errno == errno.ENOENT
    with pytest.raises(K.KvmError) as err:            # AArch32 SVC mode on an AArch64-only vcpu
        vcpu.set_one_reg(K.KVM_REG_ARM64_PSTATE, 0x1D3)
    assert err.value.errno == errno.EINVAL
    vcpu.set_one_reg(K.KVM_REG_ARM64_PSTATE, 0x3C4)   # EL1t is valid
    assert vcpu.get_one_reg(K.KVM_REG_ARM64_PSTATE) == 0x3C4
    assert vcpu.cpu.state.sp == 0x1111                # EL1t uses SP_EL0


def test_guest_debug_invalid_bits(vm: K.Vm) -> None:
    vcpu = vm.create_vcpu(0)
    vcpu.init([K.KVM_ARM_VCPU_PSCI_0_2])
    with pytest.raises(K.KvmError) as err:
        vcpu.set_guest_debug(K.KVM_GUESTDBG_ENABLE | (1 << 3))
    assert err.value.errno == errno.EINVAL


def test_memory_region_is_shared_not_copied() -> None:
    vm = K.Kvm().create_vm()
    ram = bytearray(0x2000)
    vm.set_user_memory_region(0, 0x4000_0000, 0x2000, userspace=ram)
    vm.phys.write(0x4000_0010, b"\xaa")
    assert ram[0x10] == 0xAA
    with pytest.raises(K.KvmError) as err:
        vm.set_user_memory_region(1, 0x4000_1000, 0x1000)  # overlaps slot 0
    assert err.value.errno == errno.EINVAL
    vm.set_user_memory_region(0, 0x4000_0000, 0)  # delete
    assert vm.phys.find(0x4000_0010) is None


def test_check_extension() -> None:
    kvm = K.Kvm()
    assert kvm.check_extension(K.KVM_CAP_SET_GUEST_DEBUG2) == K.KVM_GUESTDBG_VALID_MASK
    assert kvm.check_extension(K.KVM_CAP_GUEST_DEBUG_HW_BPS) == 6
    assert kvm.check_extension(K.KVM_CAP_GUEST_DEBUG_HW_WPS) == 4
