"""Guests taking interrupts through the in-kernel vGIC (v2 and v3) and the architected timer:
a periodic virtual-timer handler, an SGI ping-pong between two vcpus, an SPI raised with
Vm.irq_line (from another thread while the vcpu sleeps in WFI), WFI sleeping until a timer
deadline, stepping into a pending IRQ in both modes (kvm-semantics §7.5) and the determinism
of the instruction-count clock."""

from __future__ import annotations

import errno
import struct
import threading
import time

import pytest
from support.guest import RAM, make_guest, pc
from support.irq_guest import SYSTEM_OFF, VECTORS, run_round_robin, x
from support.irq_snippets import MAIN, ack, enable_private, enable_spi, eoi, gic_init, send_sgi

from armvisor import kvm as K

VBAR = RAM + 0x800
IRQ_VECTOR = VBAR + 0x280  # current EL with SP_ELx, IRQ
DATA = 0x3000
INTID_VTIMER, INTID_UART = 27, 33
STEP = K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_SINGLESTEP
SPSR_SS = 1 << 21


def timer_guest(version: int, period: int, ticks: int, busy: bool) -> str:
    """Counts ``ticks`` virtual-timer interrupts, re-arming TVAL = ``period`` in the handler;
    each tick records (CNTVCT_EL0, ELR_EL1) at DATA. Waits in WFI or in a busy loop."""
    wait = "add x5, x5, #1" if busy else "wfi"
    return f"""{VECTORS}
{MAIN}
    adr x21, data
{gic_init(version)}
{enable_private(version, INTID_VTIMER)}
    movz x1, #{period >> 16}, lsl #16
    movk x1, #{period & 0xFFFF}
    msr cntv_tval_el0, x1
    mov x1, #1
    msr cntv_ctl_el0, x1
    msr daifclr, #2
1:  {wait}
    cmp x20, #{ticks}
    b.lo 1b
    msr cntv_ctl_el0, xzr
{SYSTEM_OFF}
irq_handler:
    {ack(version)}
    mrs x2, cntvct_el0
    mrs x3, elr_el1
    stp x2, x3, [x21], #16
    add x20, x20, #1
    movz x4, #{period >> 16}, lsl #16
    movk x4, #{period & 0xFFFF}
    msr cntv_tval_el0, x4
    {eoi(version)}
    mov x22, x1
    eret
fiq_handler:
    brk #2
    .org {DATA}
data:
"""


def run_to_off(vcpu: K.Vcpu, timeout: float = 20) -> K.KvmRun:
    run = vcpu.run(timeout=timeout)
    assert run.exit_reason == K.KVM_EXIT_SYSTEM_EVENT, run.exit_reason
    assert run.system_event.type == K.KVM_SYSTEM_EVENT_SHUTDOWN
    return run


def records(vm: K.Vm, n: int) -> list[tuple[int, int]]:
    ram = vm.slots[0].userspace
    return [struct.unpack_from("<QQ", ram, DATA + 16 * i) for i in range(n)]


def timer_vm(version: int, period: int, ticks: int, busy: bool, clock: str):
    vm, vcpu = make_guest(timer_guest(version, period, ticks, busy))
    vm.set_clock(clock)
    vm.create_vgic(version)
    return vm, vcpu


@pytest.mark.parametrize("version", [2, 3])
def test_periodic_timer_ticks_exactly_at_deadlines_with_icount(version: int) -> None:
    """With the instruction-count clock a tick is taken exactly when CNTVCT reaches CVAL: the
    handler's CNTVCT reads are evenly spaced (period + the handler's own instructions), and WFI
    skips the idle time."""
    period, ticks = 3000, 6
    vm, vcpu = timer_vm(version, period, ticks, busy=False, clock="icount")
    run_to_off(vcpu)
    assert x(vcpu, 20) == ticks and x(vcpu, 22) == INTID_VTIMER
    counts = [c for c, _ in records(vm, ticks)]
    steps = {b - a for a, b in zip(counts, counts[1:])}
    assert len(steps) == 1 and period < steps.pop() < period + 20


@pytest.mark.parametrize("version", [2, 3])
def test_periodic_timer_with_host_time_waits_in_wfi(version: int) -> None:
    period, ticks = 62_500 * 10, 3  # 10 ms at 62.5 MHz
    vm, vcpu = timer_vm(version, period, ticks, busy=False, clock="host")
    start = time.monotonic()
    run_to_off(vcpu)
    elapsed = time.monotonic() - start
    assert x(vcpu, 20) == ticks and elapsed >= 0.03
    counts = [c for c, _ in records(vm, ticks)]
    assert all(b - a >= period for a, b in zip(counts, counts[1:]))


def test_icount_runs_are_identical() -> None:
    """The same busy-looping guest run twice under icount: the interrupted PC and the count at
    every interrupt are identical (the interrupts land mid-loop, wherever the deadline is)."""
    runs = []
    for _ in range(2):
        vm, vcpu = timer_vm(2, 998, 8, busy=True, clock="icount")
        run_to_off(vcpu)
        runs.append((records(vm, 8), x(vcpu, 5)))
    assert runs[0] == runs[1]
    elrs = {elr for _, elr in runs[0][0]}
    assert len(elrs) > 1  # not always the same instruction: the deadlines, not the loop, decide


def ping_pong_guest(version: int, rounds: int) -> str:
    """vcpu 0 sends SGI 1 to vcpu 1, which answers with SGI 2, ``rounds`` times."""
    return f"""{VECTORS}
{MAIN}{gic_init(version)}
{enable_private(version, 1)}
{enable_private(version, 2)}
    mrs x19, mpidr_el1
    and x19, x19, #0xff
    msr daifclr, #2
    cbnz x19, 2f
{send_sgi(version, 1, 1)}
2:  cmp x20, #{rounds}
    b.hs 6f
    wfi
    b 2b
6:  cbnz x19, 3f
{SYSTEM_OFF}
3:  wfi
    b 3b
irq_handler:
    {ack(version)}
    mov x22, x1
    add x20, x20, #1
    {eoi(version)}
    cbnz x19, 5f
    cmp x20, #{rounds}
    b.hs 4f
{send_sgi(version, 1, 1)}
    b 4f
5:
{send_sgi(version, 2, 0)}
4:  eret
fiq_handler:
    brk #2
"""


@pytest.mark.parametrize("version", [2, 3])
def test_sgi_ping_pong_between_two_vcpus(version: int) -> None:
    rounds = 5
    source = ping_pong_guest(version, rounds)
    vm, vcpu0 = make_guest(source)
    _, vcpu1 = make_guest(source, vm=vm)
    vm.set_clock("icount")
    vm.create_vgic(version)
    # vcpu 1 first: a GICv3 SGI is dropped unless the target already has it in Group 1.
    run = run_round_robin([vcpu1, vcpu0], rounds=100)
    assert run is not None and run.system_event.type == K.KVM_SYSTEM_EVENT_SHUTDOWN
    assert (x(vcpu0, 20), x(vcpu1, 20)) == (rounds, rounds)
    # GICv2 reports the source CPU in IAR[12:10]: SGI 2 from CPU 1, SGI 1 from CPU 0.
    assert x(vcpu0, 22) == (2 | 1 << 10 if version == 2 else 2)
    assert x(vcpu1, 22) == 1


def spi_guest(version: int) -> str:
    """Sleeps in WFI until the UART SPI arrives; the handler disables it (the line stays high)
    and counts it."""
    return f"""{VECTORS}
{MAIN}{gic_init(version)}
{enable_spi(version, INTID_UART)}
    msr daifclr, #2
1:  cbnz x20, 2f                // the interrupt may come before the first WFI
    wfi
    b 1b
2:
{SYSTEM_OFF}
irq_handler:
    {ack(version)}
    mov x22, x1
    add x20, x20, #1
    mov w2, #{1 << (INTID_UART - 32)}
    str w2, [x9, #0x184]        // GICD_ICENABLER1
    {eoi(version)}
    eret
fiq_handler:
    brk #2
"""


@pytest.mark.parametrize("version", [2, 3])
def test_spi_from_another_thread_wakes_wfi(version: int) -> None:
    vm, vcpu = make_guest(spi_guest(version))
    vm.create_vgic(version)
    raiser = threading.Timer(0.1, vm.irq_line, (INTID_UART, True))
    raiser.start()
    try:
        start = time.monotonic()
        run_to_off(vcpu, timeout=10)
        assert time.monotonic() - start >= 0.09
    finally:
        raiser.cancel()
    assert x(vcpu, 20) == 1 and x(vcpu, 22) == INTID_UART


def test_spi_raised_between_runs_is_taken_at_entry() -> None:
    vm, vcpu = make_guest(spi_guest(2))
    vm.create_vgic(2)
    with pytest.raises(OSError) as err:
        vcpu.run(max_insns=200)  # asleep in WFI: nothing can wake it within an instruction bound
    assert err.value.errno == errno.EINTR
    vm.irq_line(INTID_UART, True)
    run = vcpu.run(max_insns=200)
    assert run.exit_reason == K.KVM_EXIT_SYSTEM_EVENT and x(vcpu, 20) == 1


def test_wfi_without_wake_source_ends_with_eintr_past_the_wfi() -> None:
    vm, vcpu = make_guest("wfi\nnop")
    vm.create_vgic(2)
    with pytest.raises(OSError) as err:
        vcpu.run(timeout=0.05)
    assert err.value.errno == errno.EINTR and vcpu.kvm_run.exit_reason == K.KVM_EXIT_INTR
    assert pc(vcpu) == RAM + 4


def stepping_guest() -> str:
    return f"""{VECTORS}
{MAIN}{gic_init(2)}
{enable_spi(2, INTID_UART)}
    msr daifclr, #2
loop:
    add x5, x5, #1
    mrs x6, daif
    b loop
irq_handler:
    {ack(2)}
    add x20, x20, #1
    mov w2, #{1 << (INTID_UART - 32)}
    str w2, [x9, #0x184]
    {eoi(2)}
    eret
fiq_handler:
    brk #2
"""


def stepping_vm():
    vm, vcpu = make_guest(stepping_guest())
    vm.create_vgic(2)
    with pytest.raises(OSError):
        vcpu.run(max_insns=300)  # set-up done, spinning in the loop with IRQs unmasked
    vm.irq_line(INTID_UART, True)
    return vm, vcpu


def test_step_lands_on_the_irq_vector_by_default() -> None:
    """KVM on hardware (§7.5): the pending IRQ is taken before the stepped instruction,
    SPSR_EL1.SS=1 (active-not-pending), and the step exception fires at VBAR + 0x280."""
    vm, vcpu = stepping_vm()
    interrupted = pc(vcpu)
    vcpu.set_guest_debug(STEP)
    run = vcpu.run(max_insns=100)
    assert run.exit_reason == K.KVM_EXIT_DEBUG and run.debug.arch.hsr >> 26 == 0x32
    assert pc(vcpu) == IRQ_VECTOR
    assert vcpu.get_one_reg(K.KVM_REG_ARM64_ELR_EL1) == interrupted
    spsr = vcpu.get_one_reg(K.arm64_core_reg(K.KVM_REG_ARM_CORE_SPSR))
    assert spsr & SPSR_SS and spsr & 0x80 == 0
    assert vcpu.get_one_reg(K.KVM_REG_ARM64_PSTATE) & 0x3C0 == 0x3C0
    vcpu.run(max_insns=100)  # the next step runs the handler's first instruction
    assert pc(vcpu) == IRQ_VECTOR + 4 or pc(vcpu) > IRQ_VECTOR


def test_blockirq_steps_the_next_instruction_without_touching_daif() -> None:
    vm, vcpu = stepping_vm()
    assert K.Kvm().check_extension(K.KVM_CAP_SET_GUEST_DEBUG2) & K.KVM_GUESTDBG_BLOCKIRQ
    daif = vcpu.get_one_reg(K.KVM_REG_ARM64_PSTATE) & 0x3C0
    assert daif & 0x80 == 0  # I clear: the IRQ is deliverable
    vcpu.set_guest_debug(STEP | K.KVM_GUESTDBG_BLOCKIRQ)
    for _ in range(6):
        before = pc(vcpu)
        run = vcpu.run(max_insns=100)
        assert run.exit_reason == K.KVM_EXIT_DEBUG
        assert RAM < pc(vcpu) < VBAR or pc(vcpu) > VBAR + 0x800  # still in the main loop
        assert pc(vcpu) != before
        assert vcpu.get_one_reg(K.KVM_REG_ARM64_PSTATE) & 0x3C0 == daif
    assert x(vcpu, 20) == 0 and x(vcpu, 6) == daif  # MRS DAIF saw the guest's own value
    vcpu.set_guest_debug(0)
    with pytest.raises(OSError):
        vcpu.run(max_insns=100)
    assert x(vcpu, 20) == 1  # delivered as soon as stepping stops


@pytest.mark.parametrize("version", [2, 3])
def test_group0_interrupt_is_signalled_as_fiq(version: int) -> None:
    """Group 0 goes to FIQ: with GICC_CTLR.FIQEn on GICv2, always on GICv3 (IHI 0069 4.6)."""
    bit = 1 << (INTID_UART - 32)
    source = f"""{VECTORS}
{MAIN}{gic_init(version, group=0)}
    mov w1, #{bit}
    str w1, [x9, #0x104]        // GICD_ISENABLER1 (Group 0 at reset)
    msr daifclr, #1             // unmask FIQ only
1:  cbnz x20, 2f
    wfi
    b 1b
2:
{SYSTEM_OFF}
irq_handler:
    brk #3
fiq_handler:
    {ack(version, group=0)}
    mov x22, x1
    add x20, x20, #1
    mov w2, #{bit}
    str w2, [x9, #0x184]
    {eoi(version, group=0)}
    eret
"""
    vm, vcpu = make_guest(source)
    vm.create_vgic(version)
    vm.irq_line(INTID_UART, True)
    run_to_off(vcpu, timeout=10)
    assert x(vcpu, 20) == 1 and x(vcpu, 22) == INTID_UART
