"""GICv3 register behaviour as a guest sees it (ARM IHI 0069: Distributor 12.9, redistributors
12.10/12.11, the ICC_* System registers 12.2), with KVM's choices: affinity routing always on
and a single Security state (GICD_CTLR.ARE/DS read as one), 5 priority bits."""

from __future__ import annotations

from support.irq_guest import GICD, GICR, GICR_STRIDE, SGI_BASE, Probe

CTLR, TYPER, IIDR, IGROUPR, ISENABLER, ISPENDR, IPRIORITYR, IROUTER = (
    0x0, 0x4, 0x8, 0x80, 0x100, 0x200, 0x400, 0x6000)
WAKER = 0x14
SPURIOUS = 1023


def ready(nr_vcpus: int = 1) -> Probe:
    """Group 1 enabled in the Distributor and CPU interfaces, every private interrupt in
    Group 1, PMR open."""
    p = Probe(3, nr_vcpus)
    p.write(GICD + CTLR, 2)
    for cpu in range(nr_vcpus):
        p.write(GICR + cpu * GICR_STRIDE + SGI_BASE + IGROUPR, 0xFFFF_FFFF)
        p.msr("icc_pmr_el1", 0xFF, cpu=cpu)
        p.msr("icc_igrpen1_el1", 1, cpu=cpu)
    return p


def test_distributor_reset_values_and_ids() -> None:
    p = Probe(3)
    assert p.read(GICD + CTLR) == 0x50  # ARE (bit 4) and DS (bit 6): RAO/WI
    p.write(GICD + CTLR, 0xFFFF_FFFF)
    assert p.read(GICD + CTLR) == 0x53
    typer = p.read(GICD + TYPER)
    assert typer & 0x1F == 8 and (typer >> 19) & 0x1F == 9 and not typer & (1 << 17)  # no LPIs
    assert p.read(GICD + IIDR) == 0x43B
    assert p.read(GICD + 0xFFE8) == 0x3B  # PIDR2.ArchRev = 3


def test_private_interrupts_are_raz_wi_in_the_distributor() -> None:
    p = Probe(3)
    p.write(GICD + ISENABLER, 0xFFFF_FFFF)
    p.write(GICD + IGROUPR, 0xFFFF_FFFF)
    assert p.read(GICD + ISENABLER) == 0 and p.read(GICD + IGROUPR) == 0
    assert p.read(GICR + SGI_BASE + ISENABLER) == 0xFFFF  # the redistributor has them
    p.write(GICD + IROUTER + 8 * 20, 1)
    assert p.read(GICD + IROUTER + 8 * 20, size=8) == 0


def test_irouter_holds_affinity_and_irm_is_raz_wi() -> None:
    p = Probe(3, 2)
    assert p.read(GICD + IROUTER + 8 * 40, size=8) == 0
    p.write(GICD + IROUTER + 8 * 40, (0x12 << 32) | (1 << 31) | 0x03_0201, size=8)
    assert p.read(GICD + IROUTER + 8 * 40, size=8) == (0x12 << 32) | 0x03_0201
    assert p.read(GICD + IROUTER + 8 * 40 + 4) == 0x12  # 32-bit access to the upper half


def test_spi_follows_irouter() -> None:
    p = ready(2)
    p.write(GICD + IGROUPR + 4, 0xFFFF_FFFF)
    p.write(GICD + IROUTER + 8 * 40, 1, size=8)  # Aff0 = 1: vcpu 1
    p.write(GICD + ISENABLER + 4, 1 << 8)
    p.vm.irq_line(40, True)
    assert p.mrs("icc_iar1_el1", cpu=0) == SPURIOUS
    assert p.mrs("icc_iar1_el1", cpu=1) == 40


def test_redistributor_registers() -> None:
    p = Probe(3, 2)
    assert p.read(GICR + WAKER) == 0x6  # ProcessorSleep and ChildrenAsleep
    p.write(GICR + WAKER, 0)
    assert p.read(GICR + WAKER) == 0 and p.read(GICR + GICR_STRIDE + WAKER) == 0x6
    assert p.read(GICR + 0x8, size=8) == 0  # Affinity 0.0.0.0, Processor_Number 0, not Last
    assert p.read(GICR + GICR_STRIDE + 0x8, size=8) == (1 << 32) | (1 << 8) | (1 << 4)
    assert p.read(GICR + GICR_STRIDE + 0xC) == 1  # the upper half alone
    assert p.read(GICR + 0x4) == 0x43B and p.read(GICR + 0xFFE8) == 0x3B
    assert p.read(GICR + SGI_BASE + 0xC00) == 0xAAAAAAAA  # GICR_ICFGR0: SGIs edge
    p.write(GICR + GICR_STRIDE + SGI_BASE + IPRIORITYR + 27, 0x80, size=1)
    assert p.read(GICR + GICR_STRIDE + SGI_BASE + IPRIORITYR + 24) == 0x80 << 24
    assert p.read(GICR + SGI_BASE + IPRIORITYR + 24) == 0  # banked per redistributor


def test_icc_reset_values() -> None:
    p = Probe(3)
    assert p.mrs("icc_sre_el1") == 0x7
    p.msr("icc_sre_el1", 0)
    assert p.mrs("icc_sre_el1") == 0x7  # SRE is RAO/WI under KVM
    assert p.mrs("icc_ctlr_el1") == (4 << 8) | (1 << 15)  # PRIbits 5, A3V
    assert [p.mrs(r) for r in ("icc_pmr_el1", "icc_bpr0_el1", "icc_bpr1_el1", "icc_rpr_el1")] == [0, 2, 3, 0xFF]
    assert [p.mrs(r) for r in ("icc_igrpen0_el1", "icc_igrpen1_el1", "icc_iar1_el1")] == [0, 0, SPURIOUS]


def test_icc_pmr_and_binary_points() -> None:
    p = Probe(3)
    p.msr("icc_pmr_el1", 0xFF)
    p.msr("icc_bpr0_el1", 0)
    p.msr("icc_bpr1_el1", 0)
    assert (p.mrs("icc_pmr_el1"), p.mrs("icc_bpr0_el1"), p.mrs("icc_bpr1_el1")) == (0xF8, 2, 3)
    p.msr("icc_bpr0_el1", 6)
    p.msr("icc_ctlr_el1", 1)  # CBPR: BPR1 reads BPR0 + 1 (saturated)
    assert p.mrs("icc_bpr1_el1") == 7 and p.mrs("icc_ctlr_el1") & 1


def test_icc_acknowledge_by_group_and_eoi() -> None:
    p = ready()
    p.msr("icc_igrpen0_el1", 1)
    p.write(GICD + CTLR, 3)
    sgi = GICR + SGI_BASE
    p.write(sgi + IGROUPR, 0xFFFF_FFFF & ~(1 << 2))  # SGI 2 in Group 0
    p.write(sgi + IPRIORITYR, 0x40 << 16 | 0x20 << 8, size=4)  # SGI 1: 0x20, SGI 2: 0x40
    p.write(sgi + ISPENDR, 0b110)
    assert p.mrs("icc_hppir0_el1") == SPURIOUS and p.mrs("icc_hppir1_el1") == 1
    assert p.mrs("icc_iar0_el1") == SPURIOUS  # the highest one is Group 1
    assert p.mrs("icc_iar1_el1") == 1
    assert p.mrs("icc_rpr_el1") == 0x20 and p.mrs("icc_ap1r0_el1") == 1 << 4
    assert p.mrs("icc_iar0_el1") == SPURIOUS  # 0x40 does not preempt 0x20
    p.msr("icc_eoir1_el1", 1)
    assert p.mrs("icc_iar0_el1") == 2 and p.mrs("icc_ap0r0_el1") == 1 << 8
    p.msr("icc_ctlr_el1", 2)  # EOImode 1
    p.msr("icc_eoir0_el1", 2)
    assert p.mrs("icc_rpr_el1") == 0xFF and p.read(sgi + 0x300) == 1 << 2
    p.msr("icc_dir_el1", 2)
    assert p.read(sgi + 0x300) == 0


def test_icc_sgi1r_affinity_routing() -> None:
    p = ready(2)
    p.msr("icc_sgi1r_el1", (5 << 24) | 0b10, cpu=0)  # Aff0 1 in the target list
    assert p.mrs("icc_iar1_el1", cpu=0) == SPURIOUS
    assert p.mrs("icc_iar1_el1", cpu=1) == 5
    p.msr("icc_sgi1r_el1", (7 << 24) | (1 << 40), cpu=1)  # IRM: all but self
    assert p.mrs("icc_iar1_el1", cpu=0) == 7
    p.msr("icc_sgi1r_el1", (8 << 24) | (1 << 16) | 0b1, cpu=0)  # Aff1 = 1: nobody
    p.msr("icc_sgi0r_el1", (9 << 24) | 0b1, cpu=1)  # a Group 0 SGI to a Group 1 one: ignored
    assert p.read(GICR + SGI_BASE + ISPENDR) == 0


def test_unimplemented_icc_registers_are_undefined() -> None:
    p = Probe(3)
    p.mrs("icc_ap0r1_el1")  # only with more than 5 priority bits
    assert p.undefined
    p.mrs("icc_pmr_el1")
    assert not p.undefined


def test_gicv2_vm_has_no_system_register_interface() -> None:
    p = Probe(2)
    assert p.mrs("icc_sre_el1") == 0 and not p.undefined
    p.mrs("icc_iar1_el1")
    assert p.undefined
