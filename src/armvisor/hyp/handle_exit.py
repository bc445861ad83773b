"""The exit path: exception class -> handler (arch/arm64/kvm/handle_exit.c).

Return convention of every handler, as in KVM: ``> 0`` re-enter the guest, ``0`` return to
userspace with ``kvm_run.exit_reason`` filled in, ``< 0`` fail the run with that errno.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from armvisor.arch import esr as E
from armvisor.arch.pstate import CONDITION_TABLE, PSR_MODE32_BIT
from armvisor.hyp.adjust_pc import itstate
from armvisor.hyp.convention import EXIT_TO_USER, RESUME
from armvisor.hyp.inject import kvm_inject_undefined
from armvisor.hyp.mmio import kvm_handle_guest_abort
from armvisor.hyp.psci import kvm_smccc_call_handler, smccc_set_retval
from armvisor.hyp.sys_regs import kvm_handle_sys_reg
from armvisor.hyp.uapi import KVM_DEBUG_ARCH_HSR_HIGH_VALID, KVM_EXIT_DEBUG

if TYPE_CHECKING:
    from armvisor.cpu.stops import HypTrap
    from armvisor.hyp.vcpu import Vcpu

ExitHandler = Callable[["Vcpu", "HypTrap"], int]


def kvm_handle_wfx(vcpu: "Vcpu", trap: "HypTrap") -> int:
    """WFE yields; WFI blocks unless an interrupt is pending for the vcpu (masked or not),
    until one is. Either way the instruction is skipped first."""
    vcpu.kvm_incr_pc()
    if trap.esr & E.ESR_ELx_WFx_ISS_TI == E.ESR_ELx_WFx_ISS_WFI and not vcpu.interrupt_pending():
        vcpu.block_until_interrupt()
    return RESUME


def handle_hvc(vcpu: "Vcpu", trap: "HypTrap") -> int:
    """HVC: the PC is already past it; the immediate is ignored."""
    return kvm_smccc_call_handler(vcpu)


def handle_smc(vcpu: "Vcpu", trap: "HypTrap") -> int:
    """SMC is a trap (ELR = the SMC): step over it first. A non-zero immediate is not SMCCC."""
    vcpu.kvm_incr_pc()
    if trap.esr & E.ESR_ELx_xVC_IMM_MASK:
        smccc_set_retval(vcpu, -1)
        return RESUME
    return kvm_smccc_call_handler(vcpu)


def handle_sys64(vcpu: "Vcpu", trap: "HypTrap") -> int:
    return kvm_handle_sys_reg(vcpu, trap.esr)


def kvm_handle_guest_debug(vcpu: "Vcpu", trap: "HypTrap") -> int:
    """Debug exceptions routed by MDCR_EL2.TDE go to userspace as KVM_EXIT_DEBUG."""
    run = vcpu.kvm_run
    run.exit_reason = KVM_EXIT_DEBUG
    run.debug.arch.hsr = trap.esr & 0xFFFFFFFF
    run.debug.arch.hsr_high = trap.esr >> 32
    run.flags |= KVM_DEBUG_ARCH_HSR_HIGH_VALID
    ec = E.esr_ec(trap.esr)
    if ec in (E.ESR_ELx_EC_WATCHPT_LOW, E.ESR_ELx_EC_WATCHPT_CUR):
        run.debug.arch.far = trap.far
    elif ec == E.ESR_ELx_EC_SOFTSTP_LOW and vcpu.debug.singlestep:
        vcpu.debug.softstep_reported()
    return EXIT_TO_USER


def kvm_handle_unknown_ec(vcpu: "Vcpu", trap: "HypTrap") -> int:
    kvm_inject_undefined(vcpu.cpu.state)
    return RESUME


ARM_EXIT_HANDLERS: dict[int, ExitHandler] = {
    E.ESR_ELx_EC_WFx: kvm_handle_wfx,
    E.ESR_ELx_EC_HVC64: handle_hvc,
    E.ESR_ELx_EC_SMC64: handle_smc,
    E.ESR_ELx_EC_SYS64: handle_sys64,
    E.ESR_ELx_EC_IABT_LOW: kvm_handle_guest_abort,
    E.ESR_ELx_EC_DABT_LOW: kvm_handle_guest_abort,
    E.ESR_ELx_EC_BREAKPT_LOW: kvm_handle_guest_debug,
    E.ESR_ELx_EC_SOFTSTP_LOW: kvm_handle_guest_debug,
    E.ESR_ELx_EC_WATCHPT_LOW: kvm_handle_guest_debug,
    E.ESR_ELx_EC_BKPT32: kvm_handle_guest_debug,
    E.ESR_ELx_EC_BRK64: kvm_handle_guest_debug,
}


def kvm_get_exit_handler(ec: int) -> ExitHandler:
    """kvm_get_exit_handler: the table entry, or the UNDEFINED-injecting default."""
    return ARM_EXIT_HANDLERS.get(ec, kvm_handle_unknown_ec)


def kvm_condition_valid(esr: int, pstate: int) -> bool:
    """kvm_condition_valid32 (always true for AArch64): would a trapped conditional AArch32
    instruction have executed? ``pstate`` is the CPSR (ITSTATE in [15:10] and [26:25])."""
    if not pstate & PSR_MODE32_BIT:
        return True
    if E.esr_ec(esr) >> 4:  # EC >= 0x10: unconditional traps
        return True
    if esr & E.ESR_ELx_CV:
        cond = (esr & E.ESR_ELx_COND_MASK) >> E.ESR_ELx_COND_SHIFT
    else:
        it = itstate(pstate)
        if it == 0:
            return True
        cond = it >> 4
    if cond == 0xE:
        return True
    return CONDITION_TABLE[cond][(pstate >> 28) & 0xF] if cond != 0xF else False


def handle_trap_exceptions(vcpu: "Vcpu", trap: "HypTrap") -> int:
    """Skip a trapped instruction that failed its condition check; otherwise dispatch by EC.
    In the v4.15 step model a handled trap while single-stepping is reported at once."""
    if not kvm_condition_valid(trap.esr, vcpu.guest_pstate()):
        vcpu.kvm_incr_pc()
        handled = RESUME
    else:
        ec = E.esr_ec(trap.esr)
        vcpu.stat_exit(ec)
        handled = kvm_get_exit_handler(ec)(vcpu, trap)
    if handled > 0 and vcpu.legacy_step_exit():
        return EXIT_TO_USER
    return handled
