"""SMCCC and PSCI over HVC/SMC (arch/arm64/kvm/psci.c, hypercalls.c).

Results go to x0 with x1-x3 cleared (``smccc_set_retval``). SYSTEM_OFF/RESET/RESET2 and
(with its capability) SYSTEM_SUSPEND are handed to userspace as KVM_EXIT_SYSTEM_EVENT.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from armvisor.arch.sysregs import MPIDR_HWID_BITMASK
from armvisor.cpu.state import MASK64
from armvisor.hyp.convention import EXIT_TO_USER, RESUME
from armvisor.hyp.uapi import (
    KVM_EXIT_SYSTEM_EVENT,
    KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2,
    KVM_SYSTEM_EVENT_SHUTDOWN,
    KVM_SYSTEM_EVENT_SUSPEND,
)

if TYPE_CHECKING:
    from armvisor.hyp.vcpu import Vcpu

PSCI_0_2_FN_PSCI_VERSION = 0x84000000
PSCI_0_2_FN_CPU_SUSPEND = 0x84000001
PSCI_0_2_FN64_CPU_SUSPEND = 0xC4000001
PSCI_0_2_FN_CPU_OFF = 0x84000002
PSCI_0_2_FN_CPU_ON = 0x84000003
PSCI_0_2_FN64_CPU_ON = 0xC4000003
PSCI_0_2_FN_AFFINITY_INFO = 0x84000004
PSCI_0_2_FN64_AFFINITY_INFO = 0xC4000004
PSCI_0_2_FN_MIGRATE = 0x84000005
PSCI_0_2_FN64_MIGRATE = 0xC4000005
PSCI_0_2_FN_MIGRATE_INFO_TYPE = 0x84000006
PSCI_0_2_FN_MIGRATE_INFO_UP_CPU = 0x84000007
PSCI_0_2_FN64_MIGRATE_INFO_UP_CPU = 0xC4000007
PSCI_0_2_FN_SYSTEM_OFF = 0x84000008
PSCI_0_2_FN_SYSTEM_RESET = 0x84000009
PSCI_1_0_FN_PSCI_FEATURES = 0x8400000A
PSCI_1_0_FN_SYSTEM_SUSPEND = 0x8400000E
PSCI_1_0_FN64_SYSTEM_SUSPEND = 0xC400000E
PSCI_1_1_FN_SYSTEM_RESET2 = 0x84000012
PSCI_1_1_FN64_SYSTEM_RESET2 = 0xC4000012

KVM_PSCI_FN_BASE = 0x95C1BA5E  # PSCI 0.1 (no KVM_ARM_VCPU_PSCI_0_2)
KVM_PSCI_FN_CPU_SUSPEND = KVM_PSCI_FN_BASE + 0
KVM_PSCI_FN_CPU_OFF = KVM_PSCI_FN_BASE + 1
KVM_PSCI_FN_CPU_ON = KVM_PSCI_FN_BASE + 2
KVM_PSCI_FN_MIGRATE = KVM_PSCI_FN_BASE + 3

PSCI_RET_SUCCESS = 0
PSCI_RET_NOT_SUPPORTED = -1
PSCI_RET_INVALID_PARAMS = -2
PSCI_RET_DENIED = -3
PSCI_RET_ALREADY_ON = -4
PSCI_RET_ON_PENDING = -5
PSCI_RET_INTERNAL_FAILURE = -6
PSCI_0_2_AFFINITY_LEVEL_ON = 0
PSCI_0_2_AFFINITY_LEVEL_OFF = 1
PSCI_0_2_TOS_MP = 2  # MIGRATE_INFO_TYPE: no trusted OS needing migration
PSCI_VERSION_0_2 = 0x2
PSCI_VERSION_1_0 = 0x10000
PSCI_VERSION_1_1 = 0x10001
PSCI_1_1_RESET_TYPE_SYSTEM_WARM_RESET = 0
PSCI_1_1_RESET_TYPE_VENDOR_START = 0x80000000

ARM_SMCCC_VERSION_FUNC_ID = 0x80000000
ARM_SMCCC_ARCH_FEATURES_FUNC_ID = 0x80000001
ARM_SMCCC_ARCH_WORKAROUND_1 = 0x80008000
ARM_SMCCC_ARCH_WORKAROUND_2 = 0x80007FFF
ARM_SMCCC_ARCH_WORKAROUND_3 = 0x80003FFF
ARM_SMCCC_VERSION_1_1 = 0x10001
SMCCC_RET_SUCCESS = 0
SMCCC_RET_NOT_SUPPORTED = -1
SMCCC_RET_NOT_REQUIRED = -2
SMCCC_ARCH_WORKAROUND_RET_UNAFFECTED = 1


# A software model has no Spectre: the workarounds report "unaffected"/"not required", as
# KVM does on an unaffected host.
_ARCH_FEATURES = {
    ARM_SMCCC_ARCH_WORKAROUND_1: SMCCC_ARCH_WORKAROUND_RET_UNAFFECTED,
    ARM_SMCCC_ARCH_WORKAROUND_2: SMCCC_RET_NOT_REQUIRED,
    ARM_SMCCC_ARCH_WORKAROUND_3: SMCCC_ARCH_WORKAROUND_RET_UNAFFECTED,
}

# A PSCI function: (vcpu) -> (x0 value or None for "exit to user without touching x0", ret).
PsciFn = Callable[["Vcpu"], tuple["int | None", int]]


def _arg(vcpu: "Vcpu", n: int) -> int:
    return vcpu.cpu.state.x[n]


def smccc_set_retval(vcpu: "Vcpu", a0: int, a1: int = 0, a2: int = 0, a3: int = 0) -> None:
    x = vcpu.cpu.state.x
    x[0], x[1], x[2], x[3] = a0 & MASK64, a1 & MASK64, a2 & MASK64, a3 & MASK64


def _psci_version(vcpu: "Vcpu") -> tuple[int, int]:
    return vcpu.psci_version, RESUME


def _cpu_suspend(vcpu: "Vcpu") -> tuple[int, int]:
    """Treated exactly like WFI (kvm_psci_vcpu_suspend)."""
    vcpu.block_until_interrupt()
    return PSCI_RET_SUCCESS, RESUME


def _cpu_off(vcpu: "Vcpu") -> tuple[int, int]:
    vcpu.power_off()
    return PSCI_RET_SUCCESS, RESUME


def _cpu_on(vcpu: "Vcpu") -> tuple[int, int]:
    target_mpidr = _arg(vcpu, 1) & MPIDR_HWID_BITMASK
    target = vcpu.vm.vcpu_by_mpidr(target_mpidr)
    if target is None:
        return PSCI_RET_INVALID_PARAMS, RESUME
    if not target.powered_off:
        return (PSCI_RET_ALREADY_ON if vcpu.psci_version != 0 else PSCI_RET_INVALID_PARAMS), RESUME
    target.psci_reset(entry=_arg(vcpu, 2), context_id=_arg(vcpu, 3))
    return PSCI_RET_SUCCESS, RESUME


def _affinity_info(vcpu: "Vcpu") -> tuple[int, int]:
    target_affinity, lowest_level = _arg(vcpu, 1), _arg(vcpu, 2)
    if lowest_level > 3:
        return PSCI_RET_INVALID_PARAMS, RESUME
    mask = MPIDR_HWID_BITMASK & ~((1 << (8 * lowest_level)) - 1)  # psci_affinity_mask()
    matched = [v for v in vcpu.vm.vcpus if (v.mpidr & mask) == (target_affinity & mask)]
    if not matched:
        return PSCI_RET_INVALID_PARAMS, RESUME
    on = any(not v.powered_off for v in matched)
    return (PSCI_0_2_AFFINITY_LEVEL_ON if on else PSCI_0_2_AFFINITY_LEVEL_OFF), RESUME


def _migrate_info_type(vcpu: "Vcpu") -> tuple[int, int]:
    return PSCI_0_2_TOS_MP, RESUME


def _system_event(kind: int, flags: int = 0) -> PsciFn:
    def event(vcpu: "Vcpu") -> tuple[int, int]:
        vcpu.vm.prepare_system_event()
        run = vcpu.kvm_run
        run.exit_reason = KVM_EXIT_SYSTEM_EVENT
        run.system_event.type = kind
        run.system_event.ndata = 1
        run.system_event.data[:] = [0] * 16
        run.system_event.data[0] = flags
        return PSCI_RET_INTERNAL_FAILURE, EXIT_TO_USER

    return event


def _system_reset2(vcpu: "Vcpu") -> tuple[int, int]:
    reset_type = _arg(vcpu, 1) & 0xFFFFFFFF
    if reset_type != PSCI_1_1_RESET_TYPE_SYSTEM_WARM_RESET and not reset_type & PSCI_1_1_RESET_TYPE_VENDOR_START:
        return PSCI_RET_INVALID_PARAMS, RESUME
    return _system_event(KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_RESET2)(vcpu)


def _system_suspend(vcpu: "Vcpu") -> tuple[int, int]:
    if not vcpu.vm.system_suspend_enabled:
        return PSCI_RET_NOT_SUPPORTED, RESUME
    run = vcpu.kvm_run
    run.exit_reason = KVM_EXIT_SYSTEM_EVENT
    run.system_event.type = KVM_SYSTEM_EVENT_SUSPEND
    run.system_event.ndata = 1
    run.system_event.data[0] = 0
    return None, EXIT_TO_USER  # registers untouched: userspace decides


def _psci_features(vcpu: "Vcpu") -> tuple[int, int]:
    feature = _arg(vcpu, 1) & 0xFFFFFFFF
    if feature == ARM_SMCCC_VERSION_FUNC_ID:
        return PSCI_RET_SUCCESS, RESUME
    if feature in (PSCI_1_0_FN_SYSTEM_SUSPEND, PSCI_1_0_FN64_SYSTEM_SUSPEND):
        return (PSCI_RET_SUCCESS if vcpu.vm.system_suspend_enabled else PSCI_RET_NOT_SUPPORTED), RESUME
    if feature in (PSCI_1_1_FN_SYSTEM_RESET2, PSCI_1_1_FN64_SYSTEM_RESET2):
        return (PSCI_RET_SUCCESS if vcpu.psci_version >= PSCI_VERSION_1_1 else PSCI_RET_NOT_SUPPORTED), RESUME
    known = feature in PSCI_0_2_FUNCTIONS or feature == PSCI_1_0_FN_PSCI_FEATURES
    return (PSCI_RET_SUCCESS if known else PSCI_RET_NOT_SUPPORTED), RESUME


def _smccc_version(vcpu: "Vcpu") -> tuple[int, int]:
    return ARM_SMCCC_VERSION_1_1, RESUME


def _smccc_arch_features(vcpu: "Vcpu") -> tuple[int, int]:
    feature = _arg(vcpu, 1) & 0xFFFFFFFF
    return _ARCH_FEATURES.get(feature, SMCCC_RET_NOT_SUPPORTED), RESUME


PSCI_0_2_FUNCTIONS: dict[int, PsciFn] = {
    PSCI_0_2_FN_PSCI_VERSION: _psci_version,
    PSCI_0_2_FN_CPU_SUSPEND: _cpu_suspend,
    PSCI_0_2_FN64_CPU_SUSPEND: _cpu_suspend,
    PSCI_0_2_FN_CPU_OFF: _cpu_off,
    PSCI_0_2_FN_CPU_ON: _cpu_on,
    PSCI_0_2_FN64_CPU_ON: _cpu_on,
    PSCI_0_2_FN_AFFINITY_INFO: _affinity_info,
    PSCI_0_2_FN64_AFFINITY_INFO: _affinity_info,
    PSCI_0_2_FN_MIGRATE_INFO_TYPE: _migrate_info_type,
    PSCI_0_2_FN_SYSTEM_OFF: _system_event(KVM_SYSTEM_EVENT_SHUTDOWN),
    PSCI_0_2_FN_SYSTEM_RESET: _system_event(KVM_SYSTEM_EVENT_RESET),
}

PSCI_1_X_FUNCTIONS: dict[int, PsciFn] = {
    **PSCI_0_2_FUNCTIONS,
    PSCI_1_0_FN_PSCI_FEATURES: _psci_features,
    PSCI_1_0_FN_SYSTEM_SUSPEND: _system_suspend,
    PSCI_1_0_FN64_SYSTEM_SUSPEND: _system_suspend,
}

PSCI_1_1_ONLY: dict[int, PsciFn] = {
    PSCI_1_1_FN_SYSTEM_RESET2: _system_reset2,
    PSCI_1_1_FN64_SYSTEM_RESET2: _system_reset2,
}

PSCI_0_1_FUNCTIONS: dict[int, PsciFn] = {
    KVM_PSCI_FN_CPU_OFF: _cpu_off,
    KVM_PSCI_FN_CPU_ON: _cpu_on,
}

SMCCC_FUNCTIONS: dict[int, PsciFn] = {
    ARM_SMCCC_VERSION_FUNC_ID: _smccc_version,
    ARM_SMCCC_ARCH_FEATURES_FUNC_ID: _smccc_arch_features,
}


def function_table(vcpu: "Vcpu") -> dict[int, PsciFn]:
    """The functions this vcpu's PSCI version implements (kvm_psci_call)."""
    if vcpu.psci_version == 0:
        return PSCI_0_1_FUNCTIONS
    if vcpu.psci_version == PSCI_VERSION_0_2:
        return {**SMCCC_FUNCTIONS, **PSCI_0_2_FUNCTIONS}
    table = {**SMCCC_FUNCTIONS, **PSCI_1_X_FUNCTIONS}
    if vcpu.psci_version >= PSCI_VERSION_1_1:
        table.update(PSCI_1_1_ONLY)
    return table


def kvm_smccc_call_handler(vcpu: "Vcpu") -> int:
    """Dispatch the SMCCC call in w0; unknown IDs return NOT_SUPPORTED."""
    func_id = vcpu.cpu.state.x[0] & 0xFFFFFFFF
    handler = function_table(vcpu).get(func_id)
    if handler is None:
        smccc_set_retval(vcpu, SMCCC_RET_NOT_SUPPORTED)
        return RESUME
    value, ret = handler(vcpu)
    if value is not None:
        smccc_set_retval(vcpu, value)
    return ret
