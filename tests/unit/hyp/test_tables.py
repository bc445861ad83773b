"""Walk the hypervisor's tables (design.md: 'a test walks every table'): every exception class
has a handler (the default injects UNDEFINED), every PSCI/SMCCC function id of each PSCI version
answers through the SMCCC calling convention, and every trapped-sysreg accessor answers."""

from __future__ import annotations

import pytest
from support.guest import make_guest

from armvisor import kvm as K
from armvisor.arch.esr import ESR_ELx_EC_MAX
from armvisor.hyp.handle_exit import (
    ARM_EXIT_HANDLERS,
    kvm_get_exit_handler,
    kvm_handle_unknown_ec,
)
from armvisor.hyp.psci import (
    PSCI_VERSION_0_2,
    PSCI_VERSION_1_0,
    PSCI_VERSION_1_1,
    function_table,
)
from armvisor.hyp.sys_regs import SYS_REG_ACCESSORS

MASK64 = (1 << 64) - 1


def test_every_exception_class_has_a_handler() -> None:
    for ec in range(ESR_ELx_EC_MAX + 1):
        handler = kvm_get_exit_handler(ec)
        assert callable(handler)
        assert handler is ARM_EXIT_HANDLERS.get(ec, kvm_handle_unknown_ec)


@pytest.mark.parametrize("version", [0, PSCI_VERSION_0_2, PSCI_VERSION_1_0, PSCI_VERSION_1_1])
def test_every_psci_function_answers(version: int) -> None:
    """Each function id, called with harmless arguments on a two-vcpu VM, returns to the guest
    (or exits to userspace for the system events) with a PSCI/SMCCC status in x0."""
    features = (K.KVM_ARM_VCPU_PSCI_0_2,) if version else ()
    for func_id in sorted(function_table_for(version, features)):
        vm, vcpu = make_guest("nop\n", features=features)
        make_guest("nop\n", features=(*features, K.KVM_ARM_VCPU_POWER_OFF), vm=vm)
        if version:
            vcpu.set_one_reg(K.KVM_REG_ARM_PSCI_VERSION, version)
        x = vcpu.cpu.state.x
        x[0], x[1], x[2], x[3] = func_id, 0x100, 0, 0  # affinity 0x100 matches no vcpu
        handler = function_table(vcpu)[func_id]
        value, ret = handler(vcpu)
        assert ret in (0, 1)
        if value is not None:
            value &= MASK64  # as smccc_set_retval stores it in x0
            signed = value - (1 << 64) if value >> 63 else value
            assert -9 <= signed <= 0x7FFFFFFF, (hex(func_id), value)


def function_table_for(version: int, features) -> dict:
    vm, vcpu = make_guest("nop\n", features=features)
    if version:
        vcpu.set_one_reg(K.KVM_REG_ARM_PSCI_VERSION, version)
    return function_table(vcpu)


def test_every_trapped_sysreg_accessor_answers() -> None:
    _, vcpu = make_guest("nop\n")
    for enc, accessor in SYS_REG_ACCESSORS.items():
        read = accessor(vcpu, enc, False, 0)
        assert read is None or 0 <= read <= MASK64
        accessor(vcpu, enc, True, read or 0)
