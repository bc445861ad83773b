"""Single-stepping from userspace, scenario by scenario (kvm-semantics.md §7.4, §10.3).

Each test runs a guest built from source through the KVM-shaped API with
KVM_GUESTDBG_ENABLE|SINGLESTEP and asserts the exact sequence of run() results. The modern
(v5.0+/6.14) model reports a step of an instruction that ran in the guest with hsr 0xCB000022
(ISV=1) and a step of an instruction KVM emulated with 0xCA000022 (ISV=0); the v4.15 legacy
model synthesises 0xC8000000 (ESR_ELx_EC_SOFTSTP_LOW << ESR_ELx_EC_SHIFT).
"""

from __future__ import annotations

import errno

import pytest
from support.guest import RAM, ec, make_guest, pc, x

from armvisor import kvm as K

STEP = K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_SINGLESTEP
HSR_STEP_RAN = 0xCB000022
HSR_STEP_EMULATED = 0xCA000022
HSR_STEP_LEGACY = 0xC8000000


def stepping(source: str, legacy: bool = False):
    vm, vcpu = make_guest(source)
    if legacy:
        vm.enable_cap(K.ARMVISOR_CAP_LEGACY_SINGLESTEP, 1)
    vcpu.set_guest_debug(STEP)
    return vm, vcpu


def step(vcpu: K.Vcpu) -> K.KvmRun:
    return vcpu.run(max_insns=1000)


def test_ordinary_instructions_step_one_at_a_time() -> None:
    _, vcpu = stepping("mov x0, #1\n add x0, x0, #2\n b 1f\n nop\n1: nop\n")
    expected = [(RAM + 4, 1), (RAM + 8, 3), (RAM + 16, 3), (RAM + 20, 3)]
    for want_pc, want_x0 in expected:
        run = step(vcpu)
        assert run.exit_reason == K.KVM_EXIT_DEBUG
        assert run.debug.arch.hsr == HSR_STEP_RAN
        assert run.flags & K.KVM_DEBUG_ARCH_HSR_HIGH_VALID
        assert (pc(vcpu), x(vcpu, 0)) == (want_pc, want_x0)


@pytest.mark.parametrize("legacy", [False, True], ids=["v6.14", "v4.15"])
def test_trapped_sysreg_is_one_step(legacy: bool) -> None:
    """The founding bug: a sysreg access KVM emulates (TID3) must count as one step."""
    _, vcpu = stepping("mrs x1, id_aa64pfr0_el1\n mov x2, #5\n mov x3, #6\n", legacy)
    run = step(vcpu)
    assert run.exit_reason == K.KVM_EXIT_DEBUG and ec(run) == 0x32
    assert run.debug.arch.hsr == (HSR_STEP_LEGACY if legacy else HSR_STEP_EMULATED)
    assert pc(vcpu) == RAM + 4
    assert x(vcpu, 1) == vcpu.get_one_reg(K.arm64_sys_reg(3, 0, 0, 4, 0))
    assert x(vcpu, 2) == 0
    run = step(vcpu)
    assert pc(vcpu) == RAM + 8 and x(vcpu, 2) == 5 and x(vcpu, 3) == 0


@pytest.mark.parametrize("legacy", [False, True], ids=["v6.14", "v4.15"])
def test_userspace_mmio_load_step(legacy: bool) -> None:
    """Patch 2/2: KVM_EXIT_MMIO first; the next run writes the register, skips the load and
    reports the step without running the next instruction."""
    _, vcpu = stepping("movz x1, #0x0900, lsl #16\n ldrsh x2, [x1, #0x18]\n mov x3, #7\n", legacy)
    step(vcpu)
    run = step(vcpu)
    assert run.exit_reason == K.KVM_EXIT_MMIO
    assert (run.mmio.phys_addr, run.mmio.len, run.mmio.is_write) == (0x0900_0018, 2, 0)
    assert pc(vcpu) == RAM + 4
    run.mmio.data[:2] = (0x8001).to_bytes(2, "little")
    run = step(vcpu)
    assert run.exit_reason == K.KVM_EXIT_DEBUG and ec(run) == 0x32
    assert pc(vcpu) == RAM + 8
    assert x(vcpu, 2) == 0xFFFF_FFFF_FFFF_8001  # sign-extended per SSE, 64-bit per SF
    assert x(vcpu, 3) == 0                      # nothing else ran


def test_mmio_store_then_step() -> None:
    _, vcpu = stepping("movz x1, #0x0900, lsl #16\n mov w2, #0x41\n strb w2, [x1]\n nop\n")
    step(vcpu), step(vcpu)
    run = step(vcpu)
    assert run.exit_reason == K.KVM_EXIT_MMIO and run.mmio.is_write == 1
    assert (run.mmio.len, run.mmio.data[0]) == (1, 0x41)
    run = step(vcpu)
    assert run.exit_reason == K.KVM_EXIT_DEBUG and pc(vcpu) == RAM + 12


@pytest.mark.parametrize("legacy", [False, True], ids=["v6.14", "v4.15"])
def test_hvc_psci_version_is_one_step(legacy: bool) -> None:
    _, vcpu = stepping("movz x0, #0x8400, lsl #16\n mov x1, #1\n hvc #0\n mov x4, #4\n", legacy)
    step(vcpu), step(vcpu)
    run = step(vcpu)
    assert run.exit_reason == K.KVM_EXIT_DEBUG and ec(run) == 0x32
    assert pc(vcpu) == RAM + 12
    assert (x(vcpu, 0), x(vcpu, 1), x(vcpu, 4)) == (0x10001, 0, 0)  # x1-x3 cleared by SMCCC


def test_psci_system_off_is_a_system_event_not_a_step() -> None:
    _, vcpu = stepping("movz x0, #0x8400, lsl #16\n movk x0, #8\n hvc #0\n")
    step(vcpu), step(vcpu)
    run = step(vcpu)
    assert run.exit_reason == K.KVM_EXIT_SYSTEM_EVENT
    assert run.system_event.type == K.KVM_SYSTEM_EVENT_SHUTDOWN
    assert x(vcpu, 0) == (1 << 64) - 6  # preloaded with PSCI INTERNAL_FAILURE


def test_wfi_with_nothing_pending_then_step() -> None:
    """WFI blocks; a bound ends the run with EINTR (PC past the WFI); the step follows."""
    _, vcpu = stepping("nop\n wfi\n nop\n")
    step(vcpu)
    with pytest.raises(K.KvmError) as err:
        vcpu.run(max_insns=100)
    assert err.value.errno == errno.EINTR and vcpu.kvm_run.exit_reason == K.KVM_EXIT_INTR
    assert pc(vcpu) == RAM + 8
    run = step(vcpu)
    assert run.exit_reason == K.KVM_EXIT_DEBUG and pc(vcpu) == RAM + 8
    assert run.debug.arch.hsr == HSR_STEP_EMULATED
    step(vcpu)
    assert pc(vcpu) == RAM + 12


def test_brk_with_guest_debug_exits_at_the_brk() -> None:
    _, vcpu = stepping("nop\n brk #0x42\n")
    step(vcpu)
    run = step(vcpu)
    assert run.exit_reason == K.KVM_EXIT_DEBUG and ec(run) == 0x3C
    assert run.debug.arch.hsr & 0xFFFF == 0x42
    assert pc(vcpu) == RAM + 4


def test_undefined_instruction_steps_to_the_vector() -> None:
    src = ("adr x0, vec\n msr vbar_el1, x0\n udf #1\n nop\n"
           ".balign 2048\nvec: .fill 512, 4, 0xd503201f\n")
    _, vcpu = stepping(src)
    step(vcpu), step(vcpu)
    run = step(vcpu)
    vbar = vcpu.get_one_reg(K.arm64_sys_reg(3, 0, 12, 0, 0))
    assert run.exit_reason == K.KVM_EXIT_DEBUG and ec(run) == 0x32
    assert pc(vcpu) == vbar + 0x200  # current EL with SP_ELx, synchronous
    assert vcpu.get_one_reg(K.arm64_sys_reg(3, 0, 5, 2, 0)) >> 26 == 0  # ESR_EL1: UNDEFINED


def test_svc_from_el0_steps_to_the_lower_el_vector() -> None:
    src = ("adr x0, vec\n msr vbar_el1, x0\n adr x1, el0\n msr elr_el1, x1\n msr spsr_el1, xzr\n"
           " eret\nel0: svc #3\n nop\n.balign 2048\nvec: .fill 512, 4, 0xd503201f\n")
    _, vcpu = stepping(src)
    for _ in range(6):
        step(vcpu)
    el0 = pc(vcpu)
    assert vcpu.get_one_reg(K.KVM_REG_ARM64_PSTATE) & 0xF == 0  # at EL0t
    run = step(vcpu)
    vbar = vcpu.get_one_reg(K.arm64_sys_reg(3, 0, 12, 0, 0))
    assert run.exit_reason == K.KVM_EXIT_DEBUG and ec(run) == 0x32
    assert pc(vcpu) == vbar + 0x400
    assert vcpu.get_one_reg(K.KVM_REG_ARM64_ELR_EL1) == el0 + 4


def test_async_stop_in_active_pending_does_not_double_step() -> None:
    """KVM 6.1 fix: a bound that expires after the instruction completed but before the step
    exception was taken must not let the next run execute another instruction."""
    _, vcpu = stepping("mov x0, #1\n mov x0, #2\n mov x0, #3\n")
    with pytest.raises(K.KvmError) as err:
        vcpu.run(max_insns=1)  # the instruction completes, the budget ends the run
    assert err.value.errno == errno.EINTR
    run = step(vcpu)
    assert run.exit_reason == K.KVM_EXIT_DEBUG and pc(vcpu) == RAM + 4 and x(vcpu, 0) == 1


def test_immediate_exit_after_mmio_completes_once() -> None:
    """'Only skip MMIO insn once': a run cut short by immediate_exit completes the access, and
    the following run does not complete it again."""
    vm, vcpu = make_guest("movz x1, #0x0900, lsl #16\n ldr w2, [x1]\n add x2, x2, #1\n"
                          "ldr w3, [x1]\n")
    run = vcpu.run(max_insns=100)
    assert run.exit_reason == K.KVM_EXIT_MMIO
    run.mmio.data[:4] = (41).to_bytes(4, "little")
    run.immediate_exit = 1
    with pytest.raises(K.KvmError) as err:
        vcpu.run()
    assert err.value.errno == errno.EINTR and pc(vcpu) == RAM + 8 and x(vcpu, 2) == 41
    with pytest.raises(K.KvmError):
        vcpu.run()  # exit_reason is now KVM_EXIT_INTR: nothing to complete
    run.immediate_exit = 0
    run = vcpu.run(max_insns=100)
    assert run.exit_reason == K.KVM_EXIT_MMIO and pc(vcpu) == RAM + 12 and x(vcpu, 2) == 42


def test_guest_pstate_ss_is_the_guests_while_host_steps() -> None:
    _, vcpu = stepping("nop\n nop\n")
    step(vcpu)
    assert not vcpu.get_one_reg(K.KVM_REG_ARM64_PSTATE) & (1 << 21)


def test_disabling_debug_leaves_no_pending_step() -> None:
    _, vcpu = stepping("mov x0, #1\n mov x0, #2\n brk #0\n")
    with pytest.raises(K.KvmError):
        vcpu.run(max_insns=1)  # active-pending left behind
    vcpu.set_guest_debug(0)
    vcpu.set_guest_debug(K.KVM_GUESTDBG_ENABLE)
    run = vcpu.run(max_insns=100)
    assert run.exit_reason == K.KVM_EXIT_DEBUG and ec(run) == 0x3C  # ran to the BRK


def test_legacy_and_modern_give_the_same_sequence() -> None:
    src = ("movz x1, #0x0900, lsl #16\n mrs x5, midr_el1\n ldr w2, [x1, #0x18]\n"
           "movz x0, #0x8400, lsl #16\n hvc #0\n add x6, x5, x0\n"
           "movz x0, #0x8400, lsl #16\n movk x0, #8\n hvc #0\n")
    traces = []
    for legacy in (False, True):
        _, vcpu = stepping(src, legacy)
        trace = []
        while True:
            run = step(vcpu)
            if run.exit_reason == K.KVM_EXIT_MMIO:
                run.mmio.data[:4] = (0x90).to_bytes(4, "little")
                continue
            trace.append((run.exit_reason, pc(vcpu), tuple(x(vcpu, n) for n in range(7))))
            if run.exit_reason != K.KVM_EXIT_DEBUG:
                break
        traces.append(trace)
    assert traces[0] == traces[1]
    assert len(traces[0]) == 9


def test_exclusive_loop_cannot_be_stepped() -> None:
    """Each step is an exit and a return to the guest, which clears the exclusive monitor, so
    a stepped LDXR/STXR loop never succeeds; the step after LDXR says so (ISV=1, EX=1)."""
    src = ("adr x1, var\n 1: ldxr x0, [x1]\n add x0, x0, #1\n stxr w2, x0, [x1]\n cbnz w2, 1b\n"
           "brk #0\n .balign 8\nvar: .quad 0\n")
    _, vcpu = stepping(src)
    step(vcpu)
    for _ in range(5):
        run = step(vcpu)
        assert pc(vcpu) == RAM + 8 and run.debug.arch.hsr == HSR_STEP_RAN | (1 << 6)
        step(vcpu)
        step(vcpu)
        assert x(vcpu, 2) == 1  # store-exclusive failed
        step(vcpu)
        assert pc(vcpu) == RAM + 4
    # Without stepping the same loop completes.
    vcpu.set_guest_debug(K.KVM_GUESTDBG_ENABLE)
    run = vcpu.run(max_insns=1000)
    assert ec(run) == 0x3C and x(vcpu, 2) == 0
