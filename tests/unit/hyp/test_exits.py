"""Exit handling without debugging: MMIO/NISV, PSCI/SMCCC, SMC, sysreg emulation, WFx
(kvm-semantics.md §2-§6; arch/arm64/kvm handle_exit.c, mmio.c, psci.c, sys_regs.c)."""

from __future__ import annotations

import errno

import pytest
from support.guest import RAM, make_guest, pc, x

from armvisor import kvm as K

MASK64 = (1 << 64) - 1
PSCI = {"VERSION": 0x84000000, "CPU_OFF": 0x84000002, "CPU_ON": 0xC4000003,
        "AFFINITY_INFO": 0xC4000004, "MIGRATE_INFO_TYPE": 0x84000006, "SYSTEM_OFF": 0x84000008,
        "SYSTEM_RESET": 0x84000009, "FEATURES": 0x8400000A, "SYSTEM_SUSPEND": 0xC400000E,
        "SYSTEM_RESET2": 0xC4000012}


def hvc_call(func: int, *args: int, conduit: str = "hvc #0") -> str:
    """Assembly: load w0 = func and x1.. = args, make the call, then stop at a BRK."""
    lines = [f"ldr x0, ={func:#x}"] + [f"ldr x{i + 1}, ={a:#x}" for i, a in enumerate(args)]
    return "\n".join(lines + [conduit, "brk #1", ".ltorg"])


def run_to_brk(vcpu: K.Vcpu) -> K.KvmRun:
    vcpu.set_guest_debug(K.KVM_GUESTDBG_ENABLE)  # BRK exits to userspace
    return vcpu.run(max_insns=10_000)


@pytest.mark.parametrize("name,args,want", [
    ("VERSION", (), 0x10001),
    ("MIGRATE_INFO_TYPE", (), 2),
    ("FEATURES", (0x84000000,), 0),
    ("FEATURES", (0xC4000003,), 0),
    ("FEATURES", (0x84000012,), 0),            # SYSTEM_RESET2 (PSCI 1.1)
    ("FEATURES", (0xC400000E,), MASK64),       # SYSTEM_SUSPEND without the capability
    ("FEATURES", (0x8400001F,), MASK64),
    ("AFFINITY_INFO", (0, 0), 0),              # this vcpu is on
    ("AFFINITY_INFO", (0x5, 0), MASK64 - 1),   # no such vcpu: INVALID_PARAMS
    ("AFFINITY_INFO", (0, 4), MASK64 - 1),     # level > 3
    ("CPU_ON", (0x7, 0, 0), MASK64 - 1),       # no such vcpu
    ("CPU_ON", (0x0, 0, 0), MASK64 - 1),       # itself: KVM finds it running -> ALREADY_ON? see below
])
def test_psci_calls(name: str, args: tuple[int, ...], want: int) -> None:
    _, vcpu = make_guest(hvc_call(PSCI[name], *args))
    run = run_to_brk(vcpu)
    assert run.exit_reason == K.KVM_EXIT_DEBUG
    if name == "CPU_ON" and args[0] == 0:
        want = MASK64 - 3  # ALREADY_ON: the caller itself is running
    assert x(vcpu, 0) == want
    assert (x(vcpu, 1), x(vcpu, 2), x(vcpu, 3)) == (0, 0, 0)  # SMCCC clears x1-x3


def test_unknown_function_is_not_supported() -> None:
    _, vcpu = make_guest(hvc_call(0xC2000123, 5, 6, 7))
    run_to_brk(vcpu)
    assert (x(vcpu, 0), x(vcpu, 1), x(vcpu, 2), x(vcpu, 3)) == (MASK64, 0, 0, 0)


def test_smccc_version_and_arch_features() -> None:
    _, vcpu = make_guest(hvc_call(0x80000000))
    run_to_brk(vcpu)
    assert x(vcpu, 0) == 0x10001
    _, vcpu = make_guest(hvc_call(0x80000001, 0x80008000))  # ARCH_WORKAROUND_1
    run_to_brk(vcpu)
    assert x(vcpu, 0) == 1  # unaffected


@pytest.mark.parametrize("name,kind,flags", [("SYSTEM_OFF", 1, 0), ("SYSTEM_RESET", 2, 0),
                                             ("SYSTEM_RESET2", 2, 1)])
def test_system_events(name: str, kind: int, flags: int) -> None:
    vm, vcpu = make_guest(hvc_call(PSCI[name], 0))
    run = vcpu.run(max_insns=1000)
    assert run.exit_reason == K.KVM_EXIT_SYSTEM_EVENT
    assert (run.system_event.type, run.system_event.ndata, run.system_event.data[0]) == (kind, 1, flags)
    assert x(vcpu, 0) == MASK64 - 5  # INTERNAL_FAILURE preloaded
    assert all(v.powered_off for v in vm.vcpus)


def test_system_suspend_needs_the_capability() -> None:
    vm, vcpu = make_guest(hvc_call(PSCI["SYSTEM_SUSPEND"], 0x4000_0000, 0))
    vm.enable_cap(K.KVM_CAP_ARM_SYSTEM_SUSPEND)
    run = vcpu.run(max_insns=1000)
    assert run.exit_reason == K.KVM_EXIT_SYSTEM_EVENT
    assert run.system_event.type == K.KVM_SYSTEM_EVENT_SUSPEND
    assert x(vcpu, 0) == PSCI["SYSTEM_SUSPEND"]  # registers untouched


def test_cpu_on_starts_a_second_vcpu() -> None:
    src = ("ldr x0, =0xC4000003\n mov x1, #1\n adr x2, second\n ldr x3, =0x1234\n hvc #0\n"
           "mov x5, x0\n brk #1\nsecond: mov x6, x0\n brk #2\n.ltorg\n")
    vm, boot = make_guest(src)
    _, second = make_guest(src, features=(K.KVM_ARM_VCPU_PSCI_0_2, K.KVM_ARM_VCPU_POWER_OFF), vm=vm)
    assert second.powered_off
    with pytest.raises(K.KvmError) as err:
        second.run(max_insns=100)  # powered off, nothing can wake it within an insn bound
    assert err.value.errno == errno.EINTR
    run = run_to_brk(boot)
    assert run.exit_reason == K.KVM_EXIT_DEBUG and x(boot, 5) == 0
    run = run_to_brk(second)
    assert run.exit_reason == K.KVM_EXIT_DEBUG and run.debug.arch.hsr & 0xFFFF == 2
    assert x(second, 6) == 0x1234  # x0 = context id
    assert second.get_one_reg(K.arm64_sys_reg(3, 0, 0, 0, 5)) == 0x80000001


def test_smc_with_nonzero_immediate_and_smccc() -> None:
    _, vcpu = make_guest(hvc_call(PSCI["VERSION"], conduit="smc #1"))
    run_to_brk(vcpu)
    assert x(vcpu, 0) == MASK64
    _, vcpu = make_guest(hvc_call(PSCI["VERSION"], conduit="smc #0"))
    run = run_to_brk(vcpu)
    assert x(vcpu, 0) == 0x10001 and run.debug.arch.hsr & 0xFFFF == 1  # PC moved past the SMC


def test_mmio_read_completion_extends_per_syndrome() -> None:
    src = ("movz x1, #0x0900, lsl #16\n ldrsb w2, [x1]\n ldrsb x3, [x1]\n ldrb w4, [x1]\n"
           "ldr x5, [x1]\n ldr wzr, [x1]\n brk #0\n")
    _, vcpu = make_guest(src)
    vcpu.set_guest_debug(K.KVM_GUESTDBG_ENABLE)
    for _ in range(5):
        run = vcpu.run(max_insns=100)
        assert run.exit_reason == K.KVM_EXIT_MMIO and run.mmio.phys_addr == 0x0900_0000
        run.mmio.data[:] = bytes.fromhex("f1e2d3c4b5a69788")
    run = vcpu.run(max_insns=100)
    assert run.exit_reason == K.KVM_EXIT_DEBUG
    assert x(vcpu, 2) == 0xFFFFFFF1              # SSE, then SF=0 truncates to 32 bits
    assert x(vcpu, 3) == 0xFFFFFFFFFFFFFFF1
    assert x(vcpu, 4) == 0xF1
    assert x(vcpu, 5) == 0x8897A6B5C4D3E2F1


def test_isv0_abort_is_enosys_or_nisv_exit() -> None:
    src = "movz x1, #0x0900, lsl #16\n ldp x2, x3, [x1]\n"
    _, vcpu = make_guest(src)
    with pytest.raises(K.KvmError) as err:
        vcpu.run(max_insns=100)
    assert err.value.errno == errno.ENOSYS
    vm, vcpu = make_guest(src)
    vm.enable_cap(K.KVM_CAP_ARM_NISV_TO_USER)
    run = vcpu.run(max_insns=100)
    assert run.exit_reason == K.KVM_EXIT_ARM_NISV
    assert run.arm_nisv.fault_ipa == 0x0900_0000
    assert run.arm_nisv.esr_iss & ~0x1FF == 0 and run.arm_nisv.esr_iss & 0x3F in (5, 6, 7)
    assert pc(vcpu) == RAM + 4  # not advanced


def test_ext_dabt_injection_instead_of_completion() -> None:
    src = ("adr x0, vec\n msr vbar_el1, x0\n movz x1, #0x0900, lsl #16\n ldr w2, [x1, #8]\n"
           ".balign 2048\nvec: .fill 128, 4, 0xd503201f\n brk #9\n")
    _, vcpu = make_guest(src)
    run = vcpu.run(max_insns=100)
    assert run.exit_reason == K.KVM_EXIT_MMIO
    vcpu.set_vcpu_events(ext_dabt_pending=True)
    vcpu.set_guest_debug(K.KVM_GUESTDBG_ENABLE)
    run = vcpu.run(max_insns=1000)
    assert run.exit_reason == K.KVM_EXIT_DEBUG
    assert vcpu.get_one_reg(K.arm64_sys_reg(3, 0, 5, 2, 0)) >> 26 == 0x25  # DABT_CUR
    assert vcpu.get_one_reg(K.arm64_sys_reg(3, 0, 6, 0, 0)) == 0x0900_0008  # FAR_EL1
    assert vcpu.get_one_reg(K.KVM_REG_ARM64_ELR_EL1) == RAM + 12
    assert x(vcpu, 2) == 0


def test_id_registers_are_emulated_and_sanitised() -> None:
    _, vcpu = make_guest("mrs x1, id_aa64pfr0_el1\n mrs x2, actlr_el1\n msr actlr_el1, x1\n"
                         "mrs x3, actlr_el1\n mrs x4, midr_el1\n brk #0\n")
    run_to_brk(vcpu)
    pfr0 = x(vcpu, 1)
    assert (pfr0 >> 8) & 0xF == 0  # EL2 hidden from the guest, as KVM does without NV
    assert x(vcpu, 3) == x(vcpu, 2)  # ACTLR writes ignored
    assert vcpu.stat["exit_ec_0x18"] >= 4
    assert x(vcpu, 4) == 0x411FD070


def test_undefined_sysreg_trap_injects_undef() -> None:
    # An ID-space register with no description reads as zero (RAZ); a write to it is UNDEF.
    src = ("adr x0, vec\n msr vbar_el1, x0\n mrs x1, s3_0_c0_c3_7\n msr s3_0_c0_c3_7, x1\n"
           ".balign 2048\nvec: .fill 128, 4, 0xd503201f\n brk #9\n")
    _, vcpu = make_guest(src)
    run = run_to_brk(vcpu)
    assert run.debug.arch.hsr & 0xFFFF == 9
    assert vcpu.get_one_reg(K.KVM_REG_ARM64_ELR_EL1) == RAM + 12
    assert vcpu.get_one_reg(K.arm64_sys_reg(3, 0, 5, 2, 0)) >> 26 == 0


def test_wfe_is_skipped_and_wfi_blocks() -> None:
    _, vcpu = make_guest("wfe\n wfi\n brk #0\n")
    with pytest.raises(K.KvmError) as err:
        vcpu.run(max_insns=100)
    assert err.value.errno == errno.EINTR and pc(vcpu) == RAM + 8
    assert vcpu.stat["exit_ec_0x01"] == 2


def test_run_without_bound_never_hangs_on_wfi() -> None:
    _, vcpu = make_guest("wfi\n")
    with pytest.raises(K.KvmError) as err:
        vcpu.run()
    assert err.value.errno == errno.EINTR


def test_write_to_readonly_slot_exits_as_mmio() -> None:
    """KVM_MEM_READONLY: reads come from the slot, writes exit to userspace as MMIO."""
    vm, vcpu = make_guest("movz x1, #0x5000, lsl #16\n ldr x2, [x1, #8]\n str x2, [x1, #16]\n"
                          "brk #0\n")
    rom = bytearray(0x1000)
    rom[8:16] = (0x1122334455667788).to_bytes(8, "little")
    vm.set_user_memory_region(1, 0x5000_0000, 0x1000, K.KVM_MEM_READONLY, rom)
    run = vcpu.run(max_insns=100)
    assert run.exit_reason == K.KVM_EXIT_MMIO
    assert (run.mmio.phys_addr, run.mmio.len, run.mmio.is_write) == (0x5000_0010, 8, 1)
    assert bytes(run.mmio.data) == (0x1122334455667788).to_bytes(8, "little")
    assert rom[16:24] == bytes(8)  # the slot itself is unchanged


def test_unknown_exception_class_injects_undefined() -> None:
    """kvm_handle_unknown_ec: a class with no handler (here FP/ASIMD, 0x07) is UNDEFINED in
    the guest, with PC unchanged and the guest's vector taken."""
    from armvisor.cpu.stops import HypTrap
    from armvisor.hyp.handle_exit import handle_trap_exceptions

    _, vcpu = make_guest("nop\n")
    vcpu.set_one_reg(K.arm64_sys_reg(3, 0, 12, 0, 0), 0x4000_0800)
    trap = HypTrap(esr=(0x07 << 26) | (1 << 25), far=0, hpfar=0, elr=RAM)
    assert handle_trap_exceptions(vcpu, trap) == 1
    assert pc(vcpu) == 0x4000_0800 + 0x200
    assert vcpu.get_one_reg(K.KVM_REG_ARM64_ELR_EL1) == RAM
    assert vcpu.get_one_reg(K.arm64_sys_reg(3, 0, 5, 2, 0)) >> 26 == 0
