"""Userspace single-steps a guest over trapped debug-register accesses, iteration after
iteration (KVM selftest debug-exceptions.c part B, kvm-semantics.md §10.1).

The guest asks for stepping with an MMIO "ucall", then writes DBGBVR0/DBGWVR0 and reads them
back. Every access traps to the hypervisor (MDCR_EL2.TDA while the host owns debug) and is
emulated on the guest's shadow copy; each must be exactly one step (PC + 4), and the guest must
read back its own values, never the debugger's.
"""

from __future__ import annotations

from support.guest import make_guest, pc

from armvisor import kvm as K

UCALL = 0x0A00_0000
ITERATIONS = 10_000

GUEST = f"""
    mov x19, #0
loop:
    lsl x20, x19, #2
    movz x21, #{UCALL >> 16}, lsl #16
    str xzr, [x21]              // ucall: enable stepping
iter_ss_begin:
    nop
    msr dbgbvr0_el1, x20
    msr dbgwvr0_el1, x20
    mrs x22, dbgbvr0_el1
    mrs x23, dbgwvr0_el1
iter_ss_end:
    mov x0, #1
    str x0, [x21]               // ucall: disable stepping
    cmp x22, x20
    b.ne bad
    cmp x23, x20
    b.ne bad
    add x19, x19, #1
    ldr x0, ={ITERATIONS}
    cmp x19, x0
    b.ne loop
    mov x0, #2
    str x0, [x21]               // ucall: done
bad:
    mov x0, #3
    str x0, [x21]               // ucall: guest assertion failed
    .ltorg
"""


def test_step_over_trapped_debug_register_accesses() -> None:
    vm, vcpu = make_guest(GUEST)
    begin = 0x4000_0000 + 4 * 4
    end = begin + 5 * 4
    # The debugger's own hardware breakpoint/watchpoint values must never leak into the guest.
    arch = K.KvmGuestDebugArch()
    arch.dbg_bvr[0] = arch.dbg_wvr[0] = 0xDEAD0000
    stepping, expected_pc, steps, iterations = False, None, 0, 0
    while True:
        run = vcpu.run(max_insns=100_000)
        if run.exit_reason == K.KVM_EXIT_MMIO:
            assert run.mmio.is_write and run.mmio.phys_addr == UCALL
            cmd = int.from_bytes(run.mmio.data[:8], "little")
            assert cmd != 3, f"guest read back a wrong value in iteration {iterations}"
            if cmd == 2:
                break
            stepping = cmd == 0
            iterations += stepping
            control = K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_USE_HW
            vcpu.set_guest_debug(control | (K.KVM_GUESTDBG_SINGLESTEP if stepping else 0), arch)
            expected_pc = None
            continue
        assert run.exit_reason == K.KVM_EXIT_DEBUG and stepping, "unexpected debug exit"
        here = pc(vcpu)
        assert expected_pc is None or here == expected_pc
        steps += 1
        expected_pc = here + 4 if begin <= here < end else None
    assert iterations == ITERATIONS
    # Per iteration: the enabling ucall store completes, then nop, 2 msr, 2 mrs and the mov
    # before the disabling ucall: seven steps.
    assert steps == ITERATIONS * 7
