"""The generic timer as a guest sees it under hyp (Arm ARM D11.2: CNTFRQ_EL0, the counters,
CNTV_/CNTP_ CTL, CVAL, TVAL; CNTVOFF_EL2 through KVM's KVM_REG_ARM_TIMER_CNT), mostly with
the instruction-count clock, whose counter is exactly the number of instructions executed."""

from __future__ import annotations

import time

import pytest
from support.guest import make_guest
from support.irq_guest import x

from armvisor import kvm as K

ISTATUS, ENABLE, IMASK = 4, 1, 2


def run_guest(source: str, clock: str = "icount", setup=None, insns: int = 200) -> K.Vcpu:
    """Run ``source`` (then a spin loop) for ``insns`` instructions."""
    vm, vcpu = make_guest(source + "\n1: b 1b\n")
    vm.set_clock(clock)
    if setup is not None:
        setup(vm, vcpu)
    with pytest.raises(OSError):
        vcpu.run(max_insns=insns)
    return vcpu


def test_cntfrq_is_62_5_mhz() -> None:
    assert x(run_guest("mrs x1, cntfrq_el0"), 1) == 62_500_000


def test_icount_counter_counts_instructions() -> None:
    vcpu = run_guest("mrs x1, cntvct_el0\nnop\nnop\nmrs x2, cntvct_el0\nmrs x3, cntpct_el0")
    assert x(vcpu, 2) - x(vcpu, 1) == 3 and x(vcpu, 3) - x(vcpu, 2) == 1


@pytest.mark.parametrize("timer", ["cntv", "cntp"])
def test_istatus_when_cval_at_or_below_the_counter(timer: str) -> None:
    vcpu = run_guest(f"""
        mrs x1, {timer}ct_el0
        add x2, x1, #1000
        msr {timer}_cval_el0, x2
        mov x3, #{ENABLE}
        msr {timer}_ctl_el0, x3
        mrs x4, {timer}_ctl_el0      // CVAL in the future
        msr {timer}_cval_el0, x1
        mrs x5, {timer}_ctl_el0      // CVAL in the past
        msr {timer}_ctl_el0, xzr
        mrs x6, {timer}_ctl_el0      // disabled
    """.replace("cntvct", "cntvct").replace("cntpct", "cntpct"))
    assert (x(vcpu, 4), x(vcpu, 5), x(vcpu, 6)) == (ENABLE, ENABLE | ISTATUS, 0)


def test_tval_is_a_signed_32_bit_view_of_cval() -> None:
    vcpu = run_guest("""
        msr cntv_tval_el0, x10        // +0x1000, the upper bits ignored
        mrs x1, cntv_cval_el0
        mrs x2, cntvct_el0
        mrs x3, cntv_tval_el0
        msr cntv_tval_el0, x11        // -16: CVAL in the past
        mrs x4, cntv_cval_el0
        mrs x5, cntvct_el0
        mov x6, #1
        msr cntv_ctl_el0, x6
        mrs x7, cntv_ctl_el0
        mrs x8, cntv_tval_el0
    """, setup=lambda vm, vcpu: (vcpu.set_one_reg(K.arm64_core_x(10), 0xFFFF_FFFF_0000_1000),
                                 vcpu.set_one_reg(K.arm64_core_x(11), 0xFFFF_FFF0),
                                 vcpu.set_one_reg(K.KVM_REG_ARM_TIMER_CNT, 1 << 40)))
    assert x(vcpu, 1) - x(vcpu, 2) == 0x1000 - 2  # CVAL = counter at the write + 0x1000
    assert x(vcpu, 3) == 0x1000 - 3
    assert x(vcpu, 5) - x(vcpu, 4) == 16 + 2  # CVAL = counter at the write - 16
    assert x(vcpu, 7) == ENABLE | ISTATUS
    assert x(vcpu, 8) == (-(16 + 6)) & 0xFFFF_FFFF  # negative: the deadline has passed


def test_ctl_keeps_only_enable_and_imask() -> None:
    vcpu = run_guest("mov x1, #0xff\nmsr cntp_ctl_el0, x1\nmrs x2, cntp_ctl_el0")
    assert x(vcpu, 2) == ENABLE | IMASK | ISTATUS  # CVAL 0: condition met


def test_cntvoff_moves_the_virtual_counter_only() -> None:
    def setup(vm: K.Vm, vcpu: K.Vcpu) -> None:
        vcpu.set_one_reg(K.KVM_REG_ARM_TIMER_CNT, 0x1_0000_0000)
        vcpu.set_one_reg(K.KVM_REG_ARM_TIMER_CVAL, 0x1_0000_0000)  # CNTV_CVAL_EL0

    vcpu = run_guest("""
        mrs x1, cntvct_el0
        mrs x2, cntpct_el0
        mrs x3, cntv_cval_el0
        mov x4, #1
        msr cntv_ctl_el0, x4
        msr cntp_cval_el0, x3
        msr cntp_ctl_el0, x4
        mrs x5, cntv_ctl_el0
        mrs x6, cntp_ctl_el0
    """, setup=setup)
    assert 0x1_0000_0000 <= x(vcpu, 1) < 0x1_0000_0010 and x(vcpu, 2) < 0x10
    assert x(vcpu, 3) == 0x1_0000_0000
    assert (x(vcpu, 5), x(vcpu, 6)) == (ENABLE | ISTATUS, ENABLE)
    assert vcpu.get_one_reg(K.KVM_REG_ARM_TIMER_CTL) == ENABLE | ISTATUS  # read_timer_ctl()
    assert vcpu.get_one_reg(K.KVM_REG_ARM_TIMER_CNT) >= 0x1_0000_0000


def test_host_clock_follows_time() -> None:
    vm, vcpu = make_guest("mrs x1, cntvct_el0\nmrs x2, cntvct_el0\n")
    with pytest.raises(OSError):
        vcpu.run(max_insns=1)
    time.sleep(0.05)
    with pytest.raises(OSError):
        vcpu.run(max_insns=1)
    ticks = x(vcpu, 2) - x(vcpu, 1)
    assert 0.04 * 62_500_000 < ticks < 5 * 62_500_000


def test_unknown_clock_is_refused() -> None:
    vm = K.Kvm().create_vm()
    with pytest.raises(OSError):
        vm.set_clock("tsc")


def test_imask_keeps_the_interrupt_from_the_gic() -> None:
    """ISTATUS is set but a masked timer's output stays low: GICD_ISPENDR0 bit 27 clear until
    IMASK is cleared (the PPI is level-sensitive and follows the output)."""
    vcpu = run_guest("""
        movz x9, #0x0800, lsl #16
        mov x1, #3
        msr cntv_ctl_el0, x1          // ENABLE | IMASK, CVAL 0: condition met
        mrs x2, cntv_ctl_el0
        ldr w3, [x9, #0x200]
        mov x1, #1
        msr cntv_ctl_el0, x1
        ldr w4, [x9, #0x200]
    """, setup=lambda vm, vcpu: vm.create_vgic(2))
    assert x(vcpu, 2) == ENABLE | IMASK | ISTATUS
    assert x(vcpu, 3) & (1 << 27) == 0 and x(vcpu, 4) & (1 << 27)


def test_timer_ctl_one_reg_shows_istatus() -> None:
    """KVM_REG_ARM_TIMER_CTL reads CNTV_CTL_EL0 with ISTATUS computed (KVM read_timer_ctl)."""
    from support.guest import make_guest

    from armvisor import kvm as K

    _, vcpu = make_guest("nop\n")
    vcpu.set_one_reg(K.KVM_REG_ARM_TIMER_CVAL, 0)  # already reached
    vcpu.set_one_reg(K.KVM_REG_ARM_TIMER_CTL, 1 | 4)  # ENABLE; the ISTATUS written is ignored
    assert vcpu.get_one_reg(K.KVM_REG_ARM_TIMER_CTL) == 1 | 4
    vcpu.set_one_reg(K.KVM_REG_ARM_TIMER_CVAL, (1 << 64) - 1)  # never reached
    assert vcpu.get_one_reg(K.KVM_REG_ARM_TIMER_CTL) == 1
