"""Exceptions KVM injects into the guest (arch/arm64/kvm/inject_fault.c)."""

from __future__ import annotations

from armvisor.arch.esr import (
    ESR_ELx_EC_DABT_CUR,
    ESR_ELx_EC_DABT_LOW,
    ESR_ELx_EC_IABT_CUR,
    ESR_ELx_EC_IABT_LOW,
    ESR_ELx_EC_UNKNOWN,
    ESR_ELx_FSC_EXTABT,
)
from armvisor.cpu.exceptions import take_exception
from armvisor.cpu.state import CpuState


def kvm_inject_undefined(s: CpuState) -> None:
    """inject_undef64: an UNDEFINED exception (EC 0x00, IL=1) at the current PC."""
    s.pc = take_exception(s, ESR_ELx_EC_UNKNOWN, 0, s.pc)


def kvm_inject_abt(s: CpuState, is_iabt: bool, addr: int, il: bool = True) -> None:
    """inject_abt64: a synchronous external abort at ``addr`` (kvm_inject_dabt/pabt)."""
    if is_iabt:
        ec = ESR_ELx_EC_IABT_CUR if s.el else ESR_ELx_EC_IABT_LOW
    else:
        ec = ESR_ELx_EC_DABT_CUR if s.el else ESR_ELx_EC_DABT_LOW
    s.pc = take_exception(s, ec, ESR_ELx_FSC_EXTABT, s.pc, far=addr, il=il)
