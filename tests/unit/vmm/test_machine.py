"""Machine wiring: RAM slot at virt's 0x4000_0000, vcpus (secondaries powered off until CPU_ON),
devices on the bus with their SPIs, the device tree in RAM, boot registers (booting.rst: x0 =
device tree for a Linux Image), and the userspace exit handlers of interface 4."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from armvisor.kvm import (
    KVM_EXIT_ARM_NISV,
    KVM_EXIT_DEBUG,
    KVM_EXIT_MMIO,
    KVM_EXIT_SYSTEM_EVENT,
    KVM_REG_ARM64_PC,
    KVM_SYSTEM_EVENT_CRASH,
    KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_SHUTDOWN,
    KvmRun,
    arm64_core_x,
)
from armvisor.vmm.loaders import LoadError
from armvisor.vmm.machine import ExitStatus, GuestStop, VirtMachine
from guests import build_guest
from unit.vmm.test_loaders import arm64_image

FDT_MAGIC = b"\xd0\x0d\xfe\xed"
MiB = 1 << 20
UARTIMSC, UARTIMSC_TXIM = 0x038, 1 << 5  # DDI0183 3.3.10


@pytest.fixture(scope="module")
def hello_elf() -> Path:
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.skip("AArch64 cross toolchain not installed")
    return build_guest("hello")


def machine(kernel: Path, **options) -> tuple[VirtMachine, list[str]]:
    reports: list[str] = []
    return VirtMachine(kernel, serial=io.BytesIO(), report=reports.append, **options), reports


def test_board(hello_elf: Path) -> None:
    m, _ = machine(hello_elf, cpus=3, ram_size=64 * MiB)
    slot = m.vm.slots[0]
    assert (slot.guest_phys_addr, slot.memory_size) == (0x4000_0000, 64 * MiB)
    assert slot.userspace is m.ram.data  # shared, not copied
    assert [v.powered_off for v in m.vcpus] == [False, True, True]
    assert m.vcpus[0].get_one_reg(KVM_REG_ARM64_PC) == 0x4000_0000
    assert [(d.name, d.base) for d in m.bus.devices] == [("pl011", 0x0900_0000), ("pl031", 0x0901_0000)]
    assert m.read_memory(m.dtb_address, 4) == FDT_MAGIC
    assert m.vcpus[0].get_one_reg(arm64_core_x(0)) == 0  # an ELF is not Linux: x0 = 0, as QEMU


def test_linux_image_gets_dtb_in_x0(tmp_path: Path) -> None:
    image = tmp_path / "Image"
    image.write_bytes(arm64_image(b"\x1f\x20\x03\xd5" * 4, 0x80000, 0x10000))
    m, _ = machine(image, append="console=ttyAMA0")
    vcpu = m.vcpus[0]
    assert vcpu.get_one_reg(KVM_REG_ARM64_PC) == 0x4008_0000
    assert vcpu.get_one_reg(arm64_core_x(0)) == m.dtb_address == 0x4400_0000  # QEMU's, 128M
    assert [vcpu.get_one_reg(arm64_core_x(n)) for n in (1, 2, 3)] == [0, 0, 0]
    assert b"console=ttyAMA0\0" in m.read_memory(m.dtb_address, len(m.dtb))


def test_dump_dtb_and_dtb_option(hello_elf: Path, tmp_path: Path) -> None:
    dumped = tmp_path / "virt.dtb"
    m, _ = machine(hello_elf, dump_dtb=dumped)
    assert dumped.read_bytes() == m.dtb == m.read_memory(m.dtb_address, len(m.dtb))
    given, _ = machine(hello_elf, dtb=dumped, cpus=2)  # replaces the generated (2-CPU) tree
    assert given.dtb == m.dtb
    garbage = tmp_path / "garbage.dtb"
    garbage.write_bytes(b"not a device tree")
    with pytest.raises(LoadError, match="magic"):
        machine(hello_elf, dtb=garbage)


@pytest.mark.parametrize("options", [{"cpus": 0}, {"cpus": 9}, {"gic_version": 4}, {"ram_size": 0}])
def test_bad_board(hello_elf: Path, options: dict) -> None:
    with pytest.raises(LoadError):
        machine(hello_elf, **options)


def test_memory_access(hello_elf: Path) -> None:
    m, _ = machine(hello_elf, ram_size=MiB)
    m.write_memory(0x4000_0ff0, b"abcd")
    assert m.read_memory(0x4000_0ff0, 4) == b"abcd"
    for address in (0x3FFF_FFFF, 0x4010_0000 - 2):
        with pytest.raises(ValueError):
            m.read_memory(address, 4)
        with pytest.raises(ValueError):
            m.write_memory(address, b"abcd")


def mmio_exit(address: int, length: int, write: bytes | None = None) -> KvmRun:
    run = KvmRun()
    run.exit_reason = KVM_EXIT_MMIO
    run.mmio.phys_addr, run.mmio.len, run.mmio.is_write = address, length, int(write is not None)
    run.mmio.data[:] = (write or b"").ljust(8, b"\xee")
    return run


class EventRecorder:
    vcpu_id = 0

    def __init__(self) -> None:
        self.events: list[dict] = []

    def set_vcpu_events(self, **events: bool) -> None:
        self.events.append(events)


def test_mmio_routed_to_device(hello_elf: Path) -> None:
    m, _ = machine(hello_elf)
    run = mmio_exit(0x0900_0FE0, 4)  # UARTPeriphID0: part number bits [7:0] = 0x11
    assert m.handle_exit(m.vcpus[0], run) is None
    assert run.mmio.data[:4] == b"\x11\0\0\0"
    m.handle_exit(m.vcpus[0], mmio_exit(0x0900_0000, 1, write=b"A"))
    assert m.uart.output.getvalue() == b"A"


def test_unassigned_mmio_reads_zero_reported_once(hello_elf: Path) -> None:
    m, reports = machine(hello_elf)
    vcpu = EventRecorder()
    for _ in range(2):
        run = mmio_exit(0x0A00_0000, 4)
        assert m.handle_exit(vcpu, run) is None
        assert run.mmio.data[:4] == bytes(4)
    m.handle_exit(vcpu, mmio_exit(0x0A00_0000, 2, write=b"xy"))
    m.handle_exit(vcpu, mmio_exit(0x0900_0FFE, 4))  # crosses the PL011's end
    assert reports == ["unassigned MMIO read at 0xa000000 (len 4)", "unassigned MMIO read at 0x9000ffe (len 4)"]
    assert vcpu.events == []


def test_strict_mmio_injects_external_abort(hello_elf: Path) -> None:
    m, reports = machine(hello_elf, strict_mmio=True)
    vcpu = EventRecorder()
    assert m.handle_exit(vcpu, mmio_exit(0x0A00_0000, 4, write=b"abcd")) is None
    assert vcpu.events == [{"ext_dabt_pending": True}]
    assert reports == ["unassigned MMIO write at 0xa000000 (len 4)"]


@pytest.mark.parametrize(("event", "status"), [
    (KVM_SYSTEM_EVENT_SHUTDOWN, ExitStatus.POWER_OFF), (KVM_SYSTEM_EVENT_RESET, ExitStatus.RESET),
    (KVM_SYSTEM_EVENT_CRASH, ExitStatus.GUEST_CRASH), (99, ExitStatus.GUEST_CRASH),
])
def test_system_events(hello_elf: Path, event: int, status: int) -> None:
    m, _ = machine(hello_elf)
    run = KvmRun()
    run.exit_reason, run.system_event.type = KVM_EXIT_SYSTEM_EVENT, event
    stop = m.handle_exit(m.vcpus[0], run)
    assert isinstance(stop, GuestStop) and stop.status == status
    assert (stop.message == "") == (status == ExitStatus.POWER_OFF)


def test_nisv_and_unexpected_exits_are_crashes(hello_elf: Path) -> None:
    m, _ = machine(hello_elf)
    run = KvmRun()
    run.exit_reason, run.arm_nisv.fault_ipa = KVM_EXIT_ARM_NISV, 0x0900_0000
    stop = m.handle_exit(m.vcpus[0], run)
    assert stop.status == 3 and "cannot emulate" in stop.message and "0x9000000" in stop.message
    run.exit_reason = KVM_EXIT_DEBUG
    assert m.handle_exit(m.vcpus[0], run).status == 3


def test_uart_interrupt_wired_to_spi_33(hello_elf: Path) -> None:
    m, _ = machine(hello_elf)
    lines: list[tuple[int, bool]] = []
    m.vm.irq_line = lambda intid, level: lines.append((intid, level))
    m.handle_exit(m.vcpus[0], mmio_exit(0x0900_0000 + UARTIMSC, 4, write=UARTIMSC_TXIM.to_bytes(4, "little")))
    m.handle_exit(m.vcpus[0], mmio_exit(0x0900_0000, 1, write=b"A"))  # TX raises TXRIS
    assert lines == [(33, True)]


def test_reset_restores_boot_state(hello_elf: Path) -> None:
    m, _ = machine(hello_elf, cpus=2)
    boot = bytes(m.ram.data)
    m.write_memory(0x4000_0000, b"\xff" * 16)
    m.write_memory(0x4700_0000, b"junk")
    m.vcpus[0].set_one_reg(KVM_REG_ARM64_PC, 0x4000_1234)
    m.vcpus[1].psci_reset(0x4000_0000, 0)  # as CPU_ON does
    m.reset()
    assert bytes(m.ram.data) == boot
    assert m.vcpus[0].get_one_reg(KVM_REG_ARM64_PC) == 0x4000_0000
    assert [v.powered_off for v in m.vcpus] == [False, True]
