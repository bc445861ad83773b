"""Translated execution seen through the KVM API: the same guest with translation on and off
(ARMVISOR_CAP_TRANSLATE) gives the same exits, registers, memory and instruction counts -- with
MMIO inside hot loops, self-modifying code, and runs cut by instruction budgets."""

from __future__ import annotations

import errno

import pytest
from support.guest import RAM, RAM_SIZE, make_guest, pc, x

from armvisor import kvm as K

END = """
    ldr x0, =0x84000008            // PSCI SYSTEM_OFF
    hvc #0
"""

UART_LOOP = """
    movz x1, #0x0900, lsl #16      // the PL011 data register
    mov x2, #0
    mov x3, #300
loop:
    add x2, x2, #3
    eor x4, x2, x2, lsl #7
    and x5, x4, #0xff
    strb w5, [x1]                  // an MMIO exit in the middle of a hot block
    ldr x6, [sp, #-16]
    add x6, x6, x5
    str x6, [sp, #-16]
    subs x3, x3, #1
    b.ne loop
""" + END

COUNT_LOOP = """
    mov x10, #0
    mov x11, #0
    movz x3, #5000
loop:
    add x10, x10, #1
    add x11, x11, x10, lsl #1
    eor x11, x11, x10
    subs x3, x3, #1
    b.ne loop
""" + END

# Rewrites the "add x10, x10, #1" at `patch` into "add x10, x10, #2" after 1001 iterations,
# from inside the hot loop: later iterations must execute the new instruction.
SELF_MODIFYING = """
    mov x10, #0
    movz x3, #3000
    adr x4, patch
    ldr w5, =0x9100094a            // add x10, x10, #2
loop:
patch:
    add x10, x10, #1
    cmp x3, #2000
    b.ne skip
    str w5, [x4]
skip:
    subs x3, x3, #1
    b.ne loop
""" + END


def _run(source: str, translate: bool, max_insns: int | None = None) -> list:
    """Run to the final HVC, answering MMIO exits; the exits, final registers and the top of the
    stack, and whether anything was translated."""
    vm, vcpu = make_guest(source)
    vm.enable_cap(K.ARMVISOR_CAP_TRANSLATE, int(translate))
    exits: list = []
    while len(exits) < 100_000:
        try:
            run = vcpu.run(max_insns=max_insns)
        except K.KvmError as err:
            assert err.errno == errno.EINTR
            run = vcpu.kvm_run
        exits.append((run.exit_reason, pc(vcpu), vcpu.instructions))
        if run.exit_reason == K.KVM_EXIT_MMIO:
            exits.append(bytes(run.mmio.data[:run.mmio.len]))
        elif run.exit_reason != K.KVM_EXIT_INTR:
            break
    state = [x(vcpu, n) for n in range(31)] + [pc(vcpu), vcpu.guest_pstate()]
    return [exits, state, vm.phys.read(RAM + RAM_SIZE - 16, 16), bool(vcpu.cpu.tier1.entries)]


@pytest.mark.parametrize("source", [UART_LOOP, COUNT_LOOP, SELF_MODIFYING],
                         ids=["mmio-in-loop", "count-loop", "self-modifying"])
def test_translated_equals_decoded(source: str) -> None:
    on, off = _run(source, True), _run(source, False)
    assert on[3] and not off[3], "translation on must translate, off must not"
    assert on[:3] == off[:3]


def test_self_modifying_code_takes_effect() -> None:
    exits, state, _, translated = _run(SELF_MODIFYING, True)
    assert translated and exits[-1][0] == K.KVM_EXIT_SYSTEM_EVENT
    assert state[10] == 1001 * 1 + 1999 * 2  # 1001 iterations before the patch (x3 = 3000..2000)


@pytest.mark.parametrize("budget", [1, 7, 333, 4999])
def test_budgets_are_exact(budget: int) -> None:
    """Runs cut every ``budget`` instructions stop at the same instruction in both modes."""
    on, off = _run(COUNT_LOOP, True, budget), _run(COUNT_LOOP, False, budget)
    assert on[:3] == off[:3]
    assert all(count % budget == 0 for reason, _, count in on[0][:-1] if reason == K.KVM_EXIT_INTR)


def test_translated_loop_result() -> None:
    """The loop's arithmetic is right (not only equal in both modes)."""
    state = _run(COUNT_LOOP, True)[1]
    a = b = 0
    for _ in range(5000):
        a += 1
        b = (b + (a << 1)) ^ a
    assert state[10] == a and state[11] == b


def test_mmio_instruction_becomes_a_barrier() -> None:
    """An MMIO store inside a hot loop leaves translated code a few times, then blocks are
    translated to end in front of it: it runs at tier 0 without the hand-back."""
    vm, vcpu = make_guest(UART_LOOP)
    stores = 0
    while True:
        run = vcpu.run()
        if run.exit_reason != K.KVM_EXIT_MMIO:
            break
        stores += 1
    tier1 = vcpu.cpu.tier1
    assert stores == 300 and len(tier1.barriers) == 1
    (barrier,) = tier1.barriers
    assert tier1.deopts[barrier] == 16 and barrier + 4 in tier1.heat  # what follows may get hot
