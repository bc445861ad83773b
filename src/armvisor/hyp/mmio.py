"""Guest aborts and MMIO (arch/arm64/kvm/mmu.c kvm_handle_guest_abort, mmio.c)."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from armvisor.arch.esr import (
    ESR_ELx_CM,
    ESR_ELx_EC_IABT_LOW,
    ESR_ELx_FSC,
    ESR_ELx_ISV,
    ESR_ELx_S1PTW,
    ESR_ELx_SAS_SHIFT,
    ESR_ELx_SF,
    ESR_ELx_SRT_MASK,
    ESR_ELx_SRT_SHIFT,
    ESR_ELx_SSE,
    ESR_ELx_WNR,
    esr_ec,
)
from armvisor.hyp.convention import EXIT_TO_USER, RESUME
from armvisor.hyp.inject import kvm_inject_abt
from armvisor.hyp.uapi import KVM_EXIT_ARM_NISV, KVM_EXIT_MMIO

if TYPE_CHECKING:
    from armvisor.cpu.stops import HypTrap
    from armvisor.hyp.vcpu import Vcpu



def fault_ipa(trap: "HypTrap") -> int:
    """kvm_vcpu_get_fault_ipa: HPFAR_EL2.FIPA page | FAR_EL2[11:0]."""
    return ((trap.hpfar >> 4) << 12) | (trap.far & 0xFFF)


def dabt_len(esr: int) -> int:
    """kvm_vcpu_dabt_get_as: the access size in bytes (ISS.SAS)."""
    return 1 << ((esr >> ESR_ELx_SAS_SHIFT) & 3)


def dabt_rt(esr: int) -> int:
    """kvm_vcpu_dabt_get_rd: the transfer register (ISS.SRT; 31 is XZR)."""
    return (esr & ESR_ELx_SRT_MASK) >> ESR_ELx_SRT_SHIFT


def kvm_handle_guest_abort(vcpu: "Vcpu", trap: "HypTrap") -> int:
    """EC 0x20/0x24: faults with no memslot behind them (the only kind the CPU reports:
    RAM is mapped identically at stage 2), or writes to a read-only slot."""
    s = vcpu.cpu.state
    ipa = fault_ipa(trap)
    if esr_ec(trap.esr) == ESR_ELx_EC_IABT_LOW:
        kvm_inject_abt(s, True, trap.far)
        return RESUME
    if trap.esr & ESR_ELx_S1PTW:
        kvm_inject_abt(s, False, trap.far)
        return RESUME
    if trap.esr & ESR_ELx_CM:
        # Cache maintenance on a non-memslot address: skip it (kvm_handle_guest_abort).
        vcpu.kvm_incr_pc()
        return RESUME
    return io_mem_abort(vcpu, trap, ipa)


def io_mem_abort(vcpu: "Vcpu", trap: "HypTrap", ipa: int) -> int:
    """Decode the syndrome into a KVM_EXIT_MMIO (ISV=1), or NISV handling (ISV=0)."""
    run = vcpu.kvm_run
    esr = trap.esr
    if not esr & ESR_ELx_ISV:
        if vcpu.vm.nisv_to_user:
            run.exit_reason = KVM_EXIT_ARM_NISV
            run.arm_nisv.esr_iss = esr & (ESR_ELx_CM | ESR_ELx_WNR | ESR_ELx_FSC)
            run.arm_nisv.fault_ipa = ipa
            return EXIT_TO_USER
        return -errno.ENOSYS
    length = dabt_len(esr)
    is_write = bool(esr & ESR_ELx_WNR)
    mmio = run.mmio
    value = vcpu.cpu.state.x[dabt_rt(esr)] & ((1 << (8 * length)) - 1)  # index 31 reads as zero
    if is_write:
        mmio.data[:length] = value.to_bytes(length, "little")
    mmio.is_write = int(is_write)
    mmio.phys_addr = ipa
    mmio.len = length
    vcpu.mmio_needed = True
    device = vcpu.vm.io_bus.find(ipa, length)
    if device is not None:
        # kvm_io_bus_read/write: an in-kernel device completes the access at once.
        offset = ipa - device.base
        if is_write:
            device.device.write(vcpu, offset, length, value)
        else:
            mmio.data[:length] = device.device.read(vcpu, offset, length).to_bytes(length, "little")
        kvm_handle_mmio_return(vcpu)
        return RESUME
    run.exit_reason = KVM_EXIT_MMIO
    return EXIT_TO_USER


def kvm_handle_mmio_return(vcpu: "Vcpu") -> None:
    """Complete the access userspace answered: once only (``mmio_needed``), re-deriving size,
    register and extension from the trap's syndrome (``vcpu.trap_esr``, kvm_vcpu_get_esr), then
    skip the instruction."""
    if not vcpu.mmio_needed:  # completed already, or answered with an injected abort
        return
    vcpu.mmio_needed = False
    esr = vcpu.trap_esr
    if not esr & ESR_ELx_WNR:
        length = dabt_len(esr)
        data = int.from_bytes(vcpu.kvm_run.mmio.data[:length], "little")
        if esr & ESR_ELx_SSE and length < 8:
            sign = 1 << (8 * length - 1)
            data = ((data ^ sign) - sign) & ((1 << 64) - 1)
        if not esr & ESR_ELx_SF:
            data &= 0xFFFFFFFF
        rt = dabt_rt(esr)
        if rt != 31:
            vcpu.cpu.state.x[rt] = data
    vcpu.kvm_incr_pc()
