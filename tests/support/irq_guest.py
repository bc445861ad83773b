"""Helpers for interrupt tests: a probe that makes one guest access at a time (so register
behaviour is observed exactly as a guest sees it, through the stage-2 abort and hyp's
in-kernel devices), guests with exception vectors, and round-robin running of vcpus."""

from __future__ import annotations

import errno

from support.guest import RAM, make_guest

from armvisor import kvm as K

GICD, GICC, GICR = 0x0800_0000, 0x0801_0000, 0x080A_0000
GICR_STRIDE, SGI_BASE = 0x2_0000, 0x1_0000

_MMIO_STUBS = {
    ("r", 1): "ldrb w0, [x1]", ("r", 2): "ldrh w0, [x1]", ("r", 4): "ldr w0, [x1]", ("r", 8): "ldr x0, [x1]",
    ("w", 1): "strb w2, [x1]", ("w", 2): "strh w2, [x1]", ("w", 4): "str w2, [x1]", ("w", 8): "str x2, [x1]",
}
ICC_REGS = ("icc_pmr_el1", "icc_iar0_el1", "icc_eoir0_el1", "icc_hppir0_el1", "icc_bpr0_el1",
            "icc_ap0r0_el1", "icc_ap1r0_el1", "icc_dir_el1", "icc_rpr_el1", "icc_sgi1r_el1",
            "icc_sgi0r_el1", "icc_iar1_el1", "icc_eoir1_el1", "icc_hppir1_el1", "icc_bpr1_el1",
            "icc_ctlr_el1", "icc_sre_el1", "icc_igrpen0_el1", "icc_igrpen1_el1", "icc_ap0r1_el1")
_READ_ONLY = {"icc_iar0_el1", "icc_hppir0_el1", "icc_rpr_el1", "icc_iar1_el1", "icc_hppir1_el1"}
_WRITE_ONLY = {"icc_eoir0_el1", "icc_dir_el1", "icc_sgi1r_el1", "icc_sgi0r_el1", "icc_eoir1_el1"}


def _probe_source() -> tuple[str, dict[tuple[str, object], int]]:
    lines, where = [], {}
    for key, insn in _MMIO_STUBS.items():
        where[key] = 4 * len(lines)
        lines.append(insn)
    for reg in ICC_REGS:
        if reg not in _WRITE_ONLY:
            where[("mrs", reg)] = 4 * len(lines)
            lines.append(f"mrs x0, {reg}")
        if reg not in _READ_ONLY:
            where[("msr", reg)] = 4 * len(lines)
            lines.append(f"msr {reg}, x2")
    return "\n".join(lines), where


class Probe:
    """One guest access per call, made by vcpu ``vcpus[n]`` of a VM with a vGIC."""

    def __init__(self, version: int, nr_vcpus: int = 1, nr_irqs: int = 288) -> None:
        source, self.where = _probe_source()
        vm, first = make_guest(source)
        self.vm, self.vcpus = vm, [first]
        for _ in range(nr_vcpus - 1):
            self.vcpus.append(make_guest(source, vm=vm)[1])
        vm.create_vgic(version, nr_irqs=nr_irqs)
        self.undefined = False

    def _exec(self, key: tuple[str, object], cpu: int, address: int = 0, value: int = 0) -> int:
        vcpu = self.vcpus[cpu]
        vcpu.set_one_reg(K.KVM_REG_ARM64_PC, RAM + self.where[key])
        vcpu.set_one_reg(K.arm64_core_x(1), address)
        vcpu.set_one_reg(K.arm64_core_x(2), value)
        vcpu.set_one_reg(K.arm64_core_x(0), 0xDEAD)
        vcpu.set_one_reg(K.arm64_sys_reg(3, 0, 12, 0, 0), 0x4010_0000)  # VBAR_EL1
        try:
            vcpu.run(max_insns=1)
        except OSError as err:
            assert err.errno == errno.EINTR
        pc = vcpu.get_one_reg(K.KVM_REG_ARM64_PC)
        self.undefined = pc == 0x4010_0200  # UNDEFINED: the synchronous vector, current EL SPx
        assert self.undefined or pc == RAM + self.where[key] + 4
        return vcpu.get_one_reg(K.arm64_core_x(0))

    def read(self, address: int, size: int = 4, cpu: int = 0) -> int:
        return self._exec(("r", size), cpu, address)

    def write(self, address: int, value: int, size: int = 4, cpu: int = 0) -> None:
        self._exec(("w", size), cpu, address, value)

    def mrs(self, reg: str, cpu: int = 0) -> int:
        return self._exec(("mrs", reg), cpu)

    def msr(self, reg: str, value: int, cpu: int = 0) -> None:
        self._exec(("msr", reg), cpu, value=value)


def run_round_robin(vcpus: list[K.Vcpu], rounds: int, slice_insns: int = 500) -> K.KvmRun | None:
    """Run the vcpus in turn, ``slice_insns`` each, until one exits with a system event."""
    for _ in range(rounds):
        for vcpu in vcpus:
            try:
                run = vcpu.run(max_insns=slice_insns)
            except OSError as err:
                assert err.errno == errno.EINTR
                continue
            if run.exit_reason == K.KVM_EXIT_SYSTEM_EVENT:
                return run
            raise AssertionError(f"unexpected exit {run.exit_reason} on {vcpu}")
    return None


VECTORS = """
    b main
    .balign 0x800
vectors:
    .org vectors + 0x200
    b sync_handler
    .org vectors + 0x280
    b irq_handler
    .org vectors + 0x300
    b fiq_handler
    .org vectors + 0x800
sync_handler:
    brk #1
"""
"""Vector table at RAM + 0x800 (VBAR_EL1 set by ``adr x0, vectors; msr vbar_el1, x0``); the
guest provides ``main``, ``irq_handler`` and ``fiq_handler``."""

SYSTEM_OFF = """
    movz x0, #0x8400, lsl #16
    movk x0, #0x0008
    hvc #0
"""


def x(vcpu: K.Vcpu, n: int) -> int:
    return vcpu.get_one_reg(K.arm64_core_x(n))
