"""Guest debug: KVM_SET_GUEST_DEBUG and the debug-register ownership model of KVM 6.14
(arch/arm64/kvm/debug.c).

While userspace debugs the guest (``guest_debug`` has ENABLE) the debug state is host-owned:
MDCR_EL2.TDE routes every debug exception to EL2 and TDA traps the guest's debug-register
accesses, which then see the guest's own values, kept here as a shadow. The hardware MDSCR_EL1
is the guest's with SS/MDE/KDE replaced by the host's wishes, the hardware breakpoints and
watchpoints are userspace's (USE_HW), and the OS Lock is released.

Single step follows the 6.14 bookkeeping: on load the host's PSTATE.SS is installed (1, or 0
if the last run stopped in the active-pending state); on put it is remembered and the guest's
own PSTATE.SS restored, so ONE_REG always shows the guest's value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from armvisor.arch.sysregs import MDSCR_EL1, OSLSR_EL1
from armvisor.cpu.debug import (
    DBGBCR,
    DBGBVR,
    DBGWCR,
    DBGWVR,
    MDCR_EL2_TDE,
    MDSCR_EL1_KDE,
    MDSCR_EL1_MDE,
    MDSCR_EL1_SS,
    NUM_BRPS,
    NUM_WRPS,
    OSLSR_EL1_OSLK,
)
from armvisor.hyp.errors import einval
from armvisor.hyp.uapi import (
    KVM_ARM_MAX_DBG_REGS,
    KVM_GUESTDBG_BLOCKIRQ,
    KVM_GUESTDBG_ENABLE,
    KVM_GUESTDBG_SINGLESTEP,
    KVM_GUESTDBG_USE_HW,
    KVM_GUESTDBG_VALID_MASK,
)

if TYPE_CHECKING:
    from armvisor.hyp.vcpu import Vcpu

MDCR_EL2_TDA = 1 << 9
MDCR_EL2_TDOSA = 1 << 10
MDCR_EL2_TDRA = 1 << 11

# Everything whose guest value is shadowed while the host owns debug.
DEBUG_STATE_REGS: tuple[int, ...] = (
    MDSCR_EL1, OSLSR_EL1,
    *DBGBCR[:NUM_BRPS], *DBGBVR[:NUM_BRPS], *DBGWCR[:NUM_WRPS], *DBGWVR[:NUM_WRPS],
)
# The hardware breakpoint/watchpoint registers, by the kvm_guest_debug_arch field that feeds them.
HW_DEBUG_REGS: tuple[tuple[str, list[int]], ...] = (
    ("dbg_bcr", DBGBCR[:NUM_BRPS]), ("dbg_bvr", DBGBVR[:NUM_BRPS]),
    ("dbg_wcr", DBGWCR[:NUM_WRPS]), ("dbg_wvr", DBGWVR[:NUM_WRPS]),
)
HW_DEBUG_OFF = dict.fromkeys((enc for _name, regs in HW_DEBUG_REGS for enc in regs), 0)


class KvmGuestDebugArch:
    """``struct kvm_guest_debug_arch``: dbg_bcr/dbg_bvr/dbg_wcr/dbg_wvr, 16 each."""

    def __init__(self) -> None:
        self.dbg_bcr = [0] * KVM_ARM_MAX_DBG_REGS
        self.dbg_bvr = [0] * KVM_ARM_MAX_DBG_REGS
        self.dbg_wcr = [0] * KVM_ARM_MAX_DBG_REGS
        self.dbg_wvr = [0] * KVM_ARM_MAX_DBG_REGS


class GuestDebug:
    """Per-vcpu debug ownership and single-step bookkeeping."""

    def __init__(self, vcpu: "Vcpu") -> None:
        self.vcpu = vcpu
        self.control = 0
        self.arch = KvmGuestDebugArch()
        self.shadow: dict[int, int] | None = None  # guest's values while host-owned
        self.host_ss_active_pending = False
        self.guest_ss = 0

    @property
    def host_owned(self) -> bool:
        return self.shadow is not None

    @property
    def singlestep(self) -> bool:
        return bool(self.control & KVM_GUESTDBG_SINGLESTEP)

    @property
    def blocks_irqs(self) -> bool:
        """KVM_GUESTDBG_BLOCKIRQ while single-stepping: the vcpu's interrupt inputs are held
        low (nothing of the guest's PSTATE changes)."""
        return bool(self.control & KVM_GUESTDBG_BLOCKIRQ) and self.singlestep

    def set_guest_debug(self, control: int, arch: object | None) -> None:
        """kvm_arch_vcpu_ioctl_set_guest_debug."""
        if control & ~KVM_GUESTDBG_VALID_MASK:
            raise einval(f"guest debug control 0x{control:x} has unknown bits")
        if not control & KVM_GUESTDBG_ENABLE:
            self.control = 0
            self.host_ss_active_pending = False
            return
        if control & KVM_GUESTDBG_USE_HW:
            if arch is None:
                raise einval("KVM_GUESTDBG_USE_HW needs the debug registers (arch)")
            for name, _regs in HW_DEBUG_REGS:
                values = [int(v) & ((1 << 64) - 1) for v in getattr(arch, name)]
                if len(values) != KVM_ARM_MAX_DBG_REGS:
                    raise einval(f"{name} must have {KVM_ARM_MAX_DBG_REGS} entries")
                setattr(self.arch, name, values)
        if not control & KVM_GUESTDBG_SINGLESTEP:
            self.host_ss_active_pending = False
        self.control = control

    # -- vcpu load/put: install and remove the host's debug state -------------------------------
    def load(self) -> None:
        s = self.vcpu.cpu.state
        sr = s.sr
        if self.control and self.shadow is None:
            self.shadow = {enc: sr.get(enc, 0) for enc in DEBUG_STATE_REGS}
        elif not self.control and self.shadow is not None:
            sr.update(self.shadow)
            self.shadow = None
        if self.shadow is None:
            s.mdcr_el2 &= ~(MDCR_EL2_TDE | MDCR_EL2_TDA)
            return
        s.mdcr_el2 |= MDCR_EL2_TDE | MDCR_EL2_TDA
        mdscr = self.shadow[MDSCR_EL1] & ~(MDSCR_EL1_SS | MDSCR_EL1_MDE | MDSCR_EL1_KDE)
        if self.singlestep:
            mdscr |= MDSCR_EL1_SS
        use_hw = bool(self.control & KVM_GUESTDBG_USE_HW)
        if use_hw:
            mdscr |= MDSCR_EL1_MDE | MDSCR_EL1_KDE
        sr[MDSCR_EL1] = mdscr
        sr[OSLSR_EL1] = self.shadow[OSLSR_EL1] & ~OSLSR_EL1_OSLK
        if use_hw:
            for name, regs in HW_DEBUG_REGS:
                sr.update(zip(regs, getattr(self.arch, name)))
        else:
            sr.update(HW_DEBUG_OFF)
        if self.singlestep:
            self.guest_ss = s.ss
            s.ss = 0 if self.host_ss_active_pending else 1

    def put(self) -> None:
        s = self.vcpu.cpu.state
        if self.shadow is not None and self.singlestep:
            self.host_ss_active_pending = not s.ss
            s.ss = self.guest_ss

    def softstep_reported(self) -> None:
        """After a SOFTSTP exit the next run steps exactly one instruction (host SS = 1)."""
        self.vcpu.cpu.state.ss = 1

    # -- the guest's view of its debug registers (trapped accesses) ----------------------------
    def guest_read(self, enc: int) -> int:
        if self.shadow is not None and enc in self.shadow:
            return self.shadow[enc]
        return self.vcpu.cpu.state.sr.get(enc, 0)

    def guest_write(self, enc: int, value: int) -> None:
        if self.shadow is not None and enc in self.shadow:
            self.shadow[enc] = value
        else:
            self.vcpu.cpu.state.sr[enc] = value
