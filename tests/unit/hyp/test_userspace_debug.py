"""Userspace debugging with KVM_GUESTDBG_USE_HW / USE_SW_BP (kvm-semantics.md §7.1, §7.3, §8):
the debugger's breakpoints and watchpoints, the guest's own debug registers shadowed meanwhile,
a guest BRK re-injected QEMU-style, and the trace/statistics hooks."""

from __future__ import annotations

from support.guest import RAM, ec, make_guest, pc, x

from armvisor import kvm as K

ESR_EL1 = K.arm64_sys_reg(3, 0, 5, 2, 0)
VBAR_EL1 = K.arm64_sys_reg(3, 0, 12, 0, 0)
SPSR_EL1 = K.arm64_core_reg(K.KVM_REG_ARM_CORE_SPSR)
DBGBCR0_EL1 = K.arm64_sys_reg(2, 0, 0, 0, 5)
BCR_EXEC_ANY_EL = 1 | (0b11 << 1) | (0xF << 5)       # E, PMC EL1+EL0, BAS all
WCR_STORE_ANY_EL = 1 | (0b11 << 1) | (0b10 << 3) | (0xFF << 5)

GUEST = """
    mov x0, #0x55
    msr dbgbcr0_el1, x0         // the guest's own (disabled) breakpoint control
    adr x1, data
    mov x2, #1
    mov x3, #2
target:
    add x2, x2, #10
    strb w3, [x1, #3]
    mrs x4, dbgbcr0_el1
    brk #7
    .balign 8
data: .quad 0
"""


def debug_arch(bcr: int = 0, bvr: int = 0, wcr: int = 0, wvr: int = 0) -> K.KvmGuestDebugArch:
    arch = K.KvmGuestDebugArch()
    arch.dbg_bcr[0], arch.dbg_bvr[0], arch.dbg_wcr[0], arch.dbg_wvr[0] = bcr, bvr, wcr, wvr
    return arch


def test_hw_breakpoint_then_step_over_it() -> None:
    _, vcpu = make_guest(GUEST)
    target = RAM + 20
    hw = K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_USE_HW
    vcpu.set_guest_debug(hw, debug_arch(BCR_EXEC_ANY_EL, target))
    run = vcpu.run(max_insns=1000)
    assert run.exit_reason == K.KVM_EXIT_DEBUG and ec(run) == 0x30 and run.debug.arch.hsr == 0xC2000022
    assert pc(vcpu) == target and x(vcpu, 2) == 1  # stopped before the instruction
    # As a debugger does: remove it, step one instruction, put it back, continue.
    vcpu.set_guest_debug(hw | K.KVM_GUESTDBG_SINGLESTEP, debug_arch())
    run = vcpu.run(max_insns=1000)
    assert ec(run) == 0x32 and pc(vcpu) == target + 4 and x(vcpu, 2) == 11
    vcpu.set_guest_debug(hw, debug_arch(BCR_EXEC_ANY_EL, target))
    run = vcpu.run(max_insns=1000)
    assert ec(run) == 0x3C and run.debug.arch.hsr & 0xFFFF == 7  # ran on to the guest's BRK


def test_hw_watchpoint_reports_far_and_does_not_store() -> None:
    vm, vcpu = make_guest(GUEST)
    data = RAM + 40  # `data` follows nine instructions, 8-byte aligned
    hw = K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_USE_HW
    vcpu.set_guest_debug(hw, debug_arch(wcr=WCR_STORE_ANY_EL, wvr=data))
    run = vcpu.run(max_insns=1000)
    assert run.exit_reason == K.KVM_EXIT_DEBUG and ec(run) == 0x34
    assert run.debug.arch.hsr & (1 << 6)  # WnR
    assert run.debug.arch.far == data + 3
    assert pc(vcpu) == RAM + 24 and x(vcpu, 1) == data and vm.phys.read(data + 3, 1) == b"\0"
    vcpu.set_guest_debug(hw | K.KVM_GUESTDBG_SINGLESTEP, debug_arch())
    vcpu.run(max_insns=1000)
    assert vm.phys.read(data + 3, 1) == b"\x02"


def test_guest_debug_registers_are_shadowed_while_host_debugs() -> None:
    _, vcpu = make_guest(GUEST)
    vcpu.set_guest_debug(K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_USE_HW,
                         debug_arch(bcr=0x1E7, bvr=0x1234))
    run = vcpu.run(max_insns=1000)
    assert ec(run) == 0x3C
    # The guest reads its own value, not the debugger's: KVM's trap_bcr keeps what the guest
    # wrote in the vcpu's copy (no RES0 masking until it reaches hardware).
    assert x(vcpu, 4) == 0x55
    assert vcpu.get_one_reg(DBGBCR0_EL1) == 0x55  # ONE_REG: the guest's view too
    vcpu.set_guest_debug(0)
    vcpu.set_one_reg(K.KVM_REG_ARM64_PC, pc(vcpu) + 4)
    try:
        vcpu.run(max_insns=10)
    except K.KvmError:
        pass
    assert vcpu.cpu.state.sr[DBGBCR0_EL1 & 0xFFFF] == 0x55  # back in the PE once debugging ends


def test_guest_brk_reinjected_by_the_vmm() -> None:
    """QEMU's kvm_arm_handle_debug: a BRK that is not the debugger's is delivered to the guest
    by emulating exception entry to EL1 through ONE_REG, with the current-EL class."""
    src = ("adr x0, vec\n msr vbar_el1, x0\n brk #5\n mov x9, #9\n"
           ".balign 2048\nvec: .fill 128, 4, 0xd503201f\n"
           "mrs x10, esr_el1\n mrs x11, elr_el1\n add x11, x11, #4\n msr elr_el1, x11\n eret\n")
    _, vcpu = make_guest(src)
    vcpu.set_guest_debug(K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_USE_SW_BP)
    run = vcpu.run(max_insns=1000)
    assert ec(run) == 0x3C and pc(vcpu) == RAM + 8
    hsr = run.debug.arch.hsr
    vcpu.set_one_reg(SPSR_EL1, vcpu.get_one_reg(K.KVM_REG_ARM64_PSTATE))
    vcpu.set_one_reg(K.KVM_REG_ARM64_ELR_EL1, pc(vcpu))
    vcpu.set_one_reg(ESR_EL1, hsr)
    vcpu.set_one_reg(K.KVM_REG_ARM64_PSTATE, 0x3C5)
    vcpu.set_one_reg(K.KVM_REG_ARM64_PC, vcpu.get_one_reg(VBAR_EL1) + 0x200)
    vcpu.set_guest_debug(0)
    try:
        vcpu.run(max_insns=2000)
    except K.KvmError:
        pass
    assert x(vcpu, 10) == hsr and x(vcpu, 9) == 9


def test_trace_and_statistics() -> None:
    vm, vcpu = make_guest("mrs x1, id_aa64mmfr0_el1\n hvc #0\n brk #0\n")
    events: list[tuple[str, int | None]] = []
    vm.trace = lambda event, v, stop: events.append((event, None if stop is None else stop.esr >> 26))
    vcpu.set_guest_debug(K.KVM_GUESTDBG_ENABLE)
    vcpu.run(max_insns=1000)
    exits = [e for e in events if e[0] == "kvm_exit"]
    assert [c for _, c in exits] == [0x18, 0x16, 0x3C]
    assert events.count(("kvm_entry", None)) == 3
    assert vcpu.stat["exit_ec_0x18"] == 1 and vcpu.stat["exit_ec_0x16"] == 1
    assert vcpu.stat["exits"] == 3
