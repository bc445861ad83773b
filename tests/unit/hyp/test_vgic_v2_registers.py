"""GICv2 register behaviour as a guest sees it (ARM IHI 0048B chapter 4; KVM's vGIC choices
where the spec leaves them IMPLEMENTATION DEFINED: 5 priority bits, SGIs enabled at reset).
Every access is a real guest load/store through the in-kernel io bus."""

from __future__ import annotations

import pytest
from support.irq_guest import GICC, GICD, Probe

from armvisor import kvm as K

CTLR, TYPER, IIDR, IGROUPR, ISENABLER, ICENABLER = 0x0, 0x4, 0x8, 0x80, 0x100, 0x180
ISPENDR, ICPENDR, ISACTIVER, ICACTIVER, IPRIORITYR = 0x200, 0x280, 0x300, 0x380, 0x400
ITARGETSR, ICFGR, SGIR, CPENDSGIR, SPENDSGIR = 0x800, 0xC00, 0xF00, 0xF10, 0xF20
C_CTLR, PMR, BPR, IAR, EOIR, RPR, HPPIR = 0x0, 0x4, 0x8, 0xC, 0x10, 0x14, 0x18
ABPR, AIAR, AEOIR, AHPPIR, APR0, NSAPR0, C_IIDR, DIR = 0x1C, 0x20, 0x24, 0x28, 0xD0, 0xE0, 0xFC, 0x1000
SPURIOUS = 1023


def ready(nr_vcpus: int = 1) -> Probe:
    """Distributor and CPU interface enabled for Group 0, PMR open."""
    p = Probe(2, nr_vcpus)
    p.write(GICD + CTLR, 1)
    for cpu in range(nr_vcpus):
        p.write(GICC + PMR, 0xFF, cpu=cpu)
        p.write(GICC + C_CTLR, 1, cpu=cpu)
    return p


def pend_spi(p: Probe, intid: int, priority: int) -> None:
    p.write(GICD + IPRIORITYR + intid, priority, size=1)
    p.write(GICD + ISENABLER + 4 * (intid // 32), 1 << (intid % 32))
    p.write(GICD + ISPENDR + 4 * (intid // 32), 1 << (intid % 32))


def test_distributor_reset_values_and_ids() -> None:
    p = Probe(2)
    assert p.read(GICD + CTLR) == 0
    assert p.read(GICD + TYPER) == 0x8  # ITLinesNumber 8: 288 interrupts; 1 CPU (QEMU virt)
    assert p.read(GICD + IIDR) == 0x43B
    assert p.read(GICD + IGROUPR) == 0 and p.read(GICD + ISENABLER + 4) == 0
    assert p.read(GICD + ISENABLER) == 0xFFFF  # KVM enables the SGIs at reset
    assert p.read(GICD + ICFGR) == 0xAAAAAAAA  # SGIs are edge-triggered
    assert p.read(GICD + ICFGR + 4) == 0  # PPIs level
    assert [p.read(GICD + 0xFE0 + 4 * i) for i in range(4)] == [0x90, 0xB4, 0x2B, 0x00]  # ArchRev 2
    assert Probe(2, 2).read(GICD + TYPER) == 0x28  # CPUNumber = 1


def test_cpu_interface_reset_values() -> None:
    p = Probe(2)
    assert [p.read(GICC + r) for r in (C_CTLR, PMR, BPR, ABPR, RPR, C_IIDR)] == [0, 0, 2, 3, 0xFF, 0x2043B]
    assert p.read(GICC + IAR) == SPURIOUS and p.read(GICC + HPPIR) == SPURIOUS


def test_enable_pending_active_are_write_one_to_set_or_clear() -> None:
    p = Probe(2)
    for set_reg, clear_reg in ((ISENABLER, ICENABLER), (ISPENDR, ICPENDR), (ISACTIVER, ICACTIVER)):
        p.write(GICD + set_reg + 4, 0b101)
        p.write(GICD + set_reg + 4, 0)  # zeros have no effect
        assert p.read(GICD + set_reg + 4) == p.read(GICD + clear_reg + 4) == 0b101
        p.write(GICD + clear_reg + 4, 0b001)
        assert p.read(GICD + set_reg + 4) == 0b100


def test_sgi_pending_bits_in_ispendr0_are_read_only() -> None:
    p = Probe(2)
    p.write(GICD + ISPENDR, 0xFFFF_FFFF)
    assert p.read(GICD + ISPENDR) == 0xFFFF_0000


def test_level_interrupt_stays_pending_while_its_line_is_high() -> None:
    p = Probe(2)
    p.vm.irq_line(40, True)
    assert p.read(GICD + ISPENDR + 4) == 1 << 8
    p.write(GICD + ICPENDR + 4, 1 << 8)
    assert p.read(GICD + ISPENDR + 4) == 1 << 8
    p.vm.irq_line(40, False)
    assert p.read(GICD + ISPENDR + 4) == 0


def test_priorities_keep_five_bits_and_are_byte_accessible() -> None:
    p = Probe(2)
    p.write(GICD + IPRIORITYR + 40, 0xFF, size=1)
    p.write(GICD + IPRIORITYR + 44, 0x1122_3344)
    assert p.read(GICD + IPRIORITYR + 40) == 0xF8
    assert p.read(GICD + IPRIORITYR + 44) == 0x1020_3040
    assert p.read(GICD + IPRIORITYR + 45, size=1) == 0x30
    assert p.read(GICD + IPRIORITYR + 300) == 0  # beyond the implemented interrupts: RAZ/WI
    p.write(GICC + PMR, 0xFF)
    assert p.read(GICC + PMR) == 0xF8


def test_targets_raz_wi_on_a_uniprocessor_and_banked_with_two_cpus() -> None:
    p = Probe(2)
    p.write(GICD + ITARGETSR + 32, 0xFFFF_FFFF)
    assert p.read(GICD + ITARGETSR + 32) == 0 and p.read(GICD + ITARGETSR) == 0
    p = Probe(2, 2)
    assert p.read(GICD + ITARGETSR, cpu=0) == 0x0101_0101
    assert p.read(GICD + ITARGETSR + 28, cpu=1) == 0x0202_0202
    p.write(GICD + ITARGETSR + 32, 0xFF_02_01_FF)
    assert p.read(GICD + ITARGETSR + 32) == 0x03_02_01_03


def test_icfgr_sgis_fixed_others_configurable() -> None:
    p = Probe(2)
    p.write(GICD + ICFGR, 0)
    p.write(GICD + ICFGR + 8, 0b10 << 2)  # INTID 33 edge
    assert p.read(GICD + ICFGR) == 0xAAAAAAAA and p.read(GICD + ICFGR + 8) == 0b10 << 2


def test_reserved_offsets_read_as_zero() -> None:
    p = Probe(2)
    p.write(GICD + 0x40, 0xFFFF_FFFF)
    assert p.read(GICD + 0x40) == 0 and p.read(GICC + 0x40) == 0


def test_acknowledge_returns_highest_priority_and_eoi_restores_running_priority() -> None:
    p = ready()
    pend_spi(p, 40, 0x40)
    pend_spi(p, 41, 0x20)
    assert p.read(GICC + HPPIR) == 41
    assert p.read(GICC + IAR) == 41
    assert p.read(GICC + RPR) == 0x20 and p.read(GICC + APR0) == 1 << (0x20 >> 3)
    assert p.read(GICD + ISACTIVER + 4) == 1 << 9 and p.read(GICD + ISPENDR + 4) == 1 << 8
    assert p.read(GICC + HPPIR) == 40
    assert p.read(GICC + IAR) == SPURIOUS  # 0x40 does not preempt 0x20
    p.write(GICC + EOIR, 41)
    assert p.read(GICC + RPR) == 0xFF and p.read(GICD + ISACTIVER + 4) == 0
    assert p.read(GICC + IAR) == 40
    p.write(GICC + EOIR, 40)
    assert p.read(GICC + IAR) == SPURIOUS


@pytest.mark.parametrize("pmr,expected", [(0x80, SPURIOUS), (0x88, 40)])
def test_priority_mask(pmr: int, expected: int) -> None:
    p = ready()
    pend_spi(p, 40, 0x80)
    p.write(GICC + PMR, pmr)
    assert p.read(GICC + IAR) == expected


@pytest.mark.parametrize("bpr,expected", [(2, 42), (4, SPURIOUS)])
def test_binary_point_groups_priorities_for_preemption(bpr: int, expected: int) -> None:
    """Active 0x28 and pending 0x20: with BPR 2 the group priorities are [7:3] (0x28 vs 0x20,
    preemption); with BPR 4, [7:5]: both are 0x20, no preemption (IHI 0048B 3.3.3)."""
    p = ready()
    p.write(GICC + BPR, bpr)
    pend_spi(p, 40, 0x28)
    assert p.read(GICC + IAR) == 40
    pend_spi(p, 42, 0x20)
    assert p.read(GICC + IAR) == expected


def test_bpr_below_minimum_reads_minimum() -> None:
    p = Probe(2)
    p.write(GICC + BPR, 0)
    p.write(GICC + ABPR, 0)
    assert (p.read(GICC + BPR), p.read(GICC + ABPR)) == (2, 3)


def test_eoimode_splits_priority_drop_and_deactivation() -> None:
    p = ready()
    p.write(GICC + C_CTLR, 1 | 1 << 9)
    pend_spi(p, 40, 0x40)
    assert p.read(GICC + IAR) == 40
    p.write(GICC + EOIR, 40)
    assert p.read(GICC + RPR) == 0xFF and p.read(GICD + ISACTIVER + 4) == 1 << 8
    p.write(GICC + DIR, 40)
    assert p.read(GICD + ISACTIVER + 4) == 0


def test_group1_needs_ackctl_on_iar_and_is_acknowledged_by_aiar() -> None:
    p = ready()
    p.write(GICD + CTLR, 3)
    p.write(GICD + IGROUPR + 4, 1 << 8)
    pend_spi(p, 40, 0x40)
    assert p.read(GICC + IAR) == SPURIOUS  # Group 1 disabled at the CPU interface
    p.write(GICC + C_CTLR, 0b11)
    assert p.read(GICC + HPPIR) == 1022 and p.read(GICC + IAR) == 1022
    assert p.read(GICC + AHPPIR) == 40 and p.read(GICC + AIAR) == 40
    assert p.read(GICC + NSAPR0) == 1 << 8 and p.read(GICC + APR0) == 0
    p.write(GICC + AEOIR, 40)
    assert p.read(GICC + NSAPR0) == 0 and p.read(GICD + ISACTIVER + 4) == 0


def test_sgir_target_list_and_filters() -> None:
    p = ready(2)
    p.write(GICD + SGIR, (1 << 17) | 3)  # target list: CPU 1
    assert p.read(GICC + IAR, cpu=0) == SPURIOUS
    assert p.read(GICD + SPENDSGIR, cpu=1) == 1 << 24  # SGI 3, source CPU 0
    assert p.read(GICC + IAR, cpu=1) == 3  # CPUID 0 in [12:10]
    p.write(GICC + EOIR, 3, cpu=1)
    p.write(GICD + SGIR, (1 << 24) | 5, cpu=1)  # all but self
    assert p.read(GICC + IAR, cpu=0) == 5 | 1 << 10
    p.write(GICD + SGIR, (2 << 24) | 6, cpu=1)  # self only
    assert p.read(GICC + IAR, cpu=0) == SPURIOUS and p.read(GICC + IAR, cpu=1) == 6 | 1 << 10


def test_sgi_pending_per_source_set_and_cleared() -> None:
    p = Probe(2, 2)
    p.write(GICD + SPENDSGIR, 0b11 << 8, size=4, cpu=0)  # SGI 1 from CPUs 0 and 1
    assert p.read(GICD + SPENDSGIR + 1, size=1) == 0b11
    p.write(GICD + CPENDSGIR + 1, 0b01, size=1)
    assert p.read(GICD + SPENDSGIR) == 0b10 << 8


def test_no_gic_means_mmio_exits_and_irq_line_fails() -> None:
    from support.guest import make_guest

    vm, vcpu = make_guest("ldr w0, [x1]")
    vcpu.set_one_reg(K.arm64_core_x(1), GICD + TYPER)
    assert vcpu.run(max_insns=5).exit_reason == K.KVM_EXIT_MMIO
    with pytest.raises(OSError) as err:
        vm.irq_line(33, True)
    assert err.value.errno == 6  # ENXIO


def test_create_vgic_and_irq_line_validation() -> None:
    p = Probe(2)
    with pytest.raises(OSError):
        p.vm.create_vgic(2)
    with pytest.raises(OSError):
        p.vm.create_vcpu(5)
    for intid in (27, 288):
        with pytest.raises(OSError):
            p.vm.irq_line(intid, True)
    vm = K.Kvm().create_vm()
    vm.create_vcpu(0)
    with pytest.raises(OSError):
        vm.create_vgic(4)
    assert K.Kvm().check_extension(K.KVM_CAP_IRQCHIP) == 1
