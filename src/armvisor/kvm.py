"""armvisor's KVM-shaped API: what a VMM uses the way QEMU and kvmtool use ``/dev/kvm``.

    kvm = Kvm(); vm = kvm.create_vm()
    vm.set_user_memory_region(0, 0x4000_0000, size, userspace=ram)
    vcpu = vm.create_vcpu(0); vcpu.init([KVM_ARM_VCPU_PSCI_0_2])
    vcpu.set_one_reg(KVM_REG_ARM64_PC, entry)
    run = vcpu.run(max_insns=...)   # run.exit_reason, run.mmio, run.debug.arch, ...

Names and values follow Linux's uapi headers; errors KVM reports as errno raise
:class:`KvmError` (an ``OSError``) with that errno.
"""

from armvisor.hyp.debug import KvmGuestDebugArch  # noqa: F401 - re-exported
from armvisor.hyp.errors import KvmError  # noqa: F401 - re-exported
from armvisor.hyp.psci import *  # noqa: F401,F403 - PSCI/SMCCC function ids and return codes
from armvisor.hyp.run_record import KvmRun  # noqa: F401 - re-exported
from armvisor.hyp.uapi import *  # noqa: F401,F403 - the uapi constants
from armvisor.hyp.vcpu import Vcpu  # noqa: F401 - re-exported
from armvisor.hyp.vm import (  # noqa: F401 - re-exported
    ARMVISOR_CAP_LEGACY_SINGLESTEP,
    ARMVISOR_CAP_TRANSLATE,
    Kvm,
    Vm,
)
