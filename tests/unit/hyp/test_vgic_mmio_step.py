"""The harness guest ``mmio_step.elf`` (GICv2 + virtual timer + WFI) run through the hyp API
with a minimal VMM loop, against QEMU's reference trace (``mmio_step.qemu.txt``, recorded on
``qemu-system-aarch64 -M virt -cpu cortex-a57``): the GIC and timer values it reads land in
x11..x15 (GICD_TYPER, GICD_IIDR, CNTV_CTL_EL0 after the WFI, GICC_IAR, GICC_IAR again)."""

from __future__ import annotations

import re

import pytest
from elftools.elf.elffile import ELFFile

from support.shared import HARNESS

from armvisor import kvm as K

REFERENCE = HARNESS / "reference"
ELF = REFERENCE / "elf" / "mmio_step.elf"
TRACE = REFERENCE / "mmio_step.qemu.txt"
RAM, RAM_SIZE = 0x4000_0000, 0x0800_0000
UART, RTC = 0x0900_0000, 0x0901_0000
# PL011 and PL031 registers the guest reads, as QEMU's trace shows them (byte per 32-bit ID
# register; UARTFR = TXFE|RXFE).
PL011_READS = {0x18: 0x90, 0xFE0: 0x11, 0xFE4: 0x10, 0xFE8: 0x14, 0xFEC: 0x00,
               0xFF0: 0x0D, 0xFF4: 0xF0, 0xFF8: 0x05, 0xFFC: 0xB1}

pytestmark = pytest.mark.skipif(not ELF.exists() or not TRACE.exists(), reason="harness reference missing")


def reference_registers() -> dict[str, int]:
    """The last value QEMU's trace shows for each register, and the guest's UART output."""
    values: dict[str, int] = {}
    for line in TRACE.read_text().splitlines():
        if "->" in line:
            for name, value in re.findall(r"\b(x\d+)=(0x[0-9a-f]+)", line.split("->", 1)[1]):
                values[name] = int(value, 16)
    return values


def load(vm: K.Vm) -> int:
    ram = bytearray(RAM_SIZE)
    with ELF.open("rb") as f:
        elf = ELFFile(f)
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]:
                off = seg["p_paddr"] - RAM
                ram[off:off + seg["p_filesz"]] = seg.data()
        entry = elf["e_entry"]
    vm.set_user_memory_region(0, RAM, RAM_SIZE, userspace=ram)
    return entry


def mmio_read(addr: int, size: int) -> int:
    if UART <= addr < UART + 0x1000:
        value = 0
        for i in range(0, size, 4):  # a 64-bit load covers two ID registers
            value |= PL011_READS.get(addr - UART + i, 0) << (8 * i)
        return value
    assert RTC <= addr < RTC + 0x1000, f"unexpected MMIO read at 0x{addr:x}"
    return 0  # PL031: these values are overwritten before the registers are compared


def test_mmio_step_gic_and_timer_values_match_qemu() -> None:
    vm = K.Kvm().create_vm()
    entry = load(vm)
    vcpu = vm.create_vcpu(0)
    vcpu.init([K.KVM_ARM_VCPU_PSCI_0_2])
    vm.create_vgic(2)
    vcpu.set_one_reg(K.KVM_REG_ARM64_PC, entry)
    output = bytearray()
    for _ in range(200):
        run = vcpu.run(timeout=10)
        if run.exit_reason == K.KVM_EXIT_SYSTEM_EVENT:
            break
        assert run.exit_reason == K.KVM_EXIT_MMIO
        m = run.mmio
        if m.is_write:
            if m.phys_addr == UART:
                output.append(m.data[0])
        else:
            m.data[:m.len] = mmio_read(m.phys_addr, m.len).to_bytes(m.len, "little")
    assert run.system_event.type == K.KVM_SYSTEM_EVENT_SHUTDOWN
    assert output == b"hi\nok\n"
    want = reference_registers()
    got = {f"x{n}": vcpu.get_one_reg(K.arm64_core_x(n)) for n in range(11, 16)}
    assert got == {f"x{n}": want[f"x{n}"] for n in range(11, 16)}
    assert got == {"x11": 0x8, "x12": 0x43B, "x13": 0x5, "x14": 27, "x15": 1023}
