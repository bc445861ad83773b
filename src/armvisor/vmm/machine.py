"""The ``virt`` machine: QEMU's ``-M virt`` memory map assembled on armvisor's KVM API, the way
QEMU's ``hw/arm/virt.c`` and kvmtool's ``arm/kvm.c`` assemble theirs on ``/dev/kvm``.

Memory map (QEMU ``virt``): GIC at 0x0800_0000 (in-kernel, no exits), PL011 at 0x0900_0000
(SPI 1 = INTID 33), PL031 at 0x0901_0000 (SPI 2 = INTID 34), RAM from 0x4000_0000. vcpu 0 is
powered on at the kernel's entry; secondaries start powered off (KVM_ARM_VCPU_POWER_OFF) and
are brought up with PSCI CPU_ON. :meth:`VirtMachine.handle_exit` completes what ``KVM_RUN``
hands back to userspace, through a table by ``exit_reason``.
"""

from __future__ import annotations

import enum
import os
import select
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from armvisor.hyp import uapi
from armvisor.hyp.vgic import VGIC_NR_PRIVATE_IRQS
from armvisor.kvm import (
    ARMVISOR_CAP_TRANSLATE,
    KVM_ARM_VCPU_POWER_OFF,
    KVM_ARM_VCPU_PSCI_0_2,
    KVM_CAP_ARM_NISV_TO_USER,
    KVM_EXIT_ARM_NISV,
    KVM_EXIT_DEBUG,
    KVM_EXIT_MMIO,
    KVM_EXIT_SYSTEM_EVENT,
    KVM_REG_ARM64_PC,
    KVM_SYSTEM_EVENT_CRASH,
    KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_SHUTDOWN,
    Kvm,
    KvmRun,
    Vcpu,
    arm64_core_x,
)
from armvisor.vmm.bus import MmioBus
from armvisor.vmm.devices import Pl011, Pl031
from armvisor.vmm.devices.base import PrimeCellDevice
from armvisor.vmm.fdt import GIC_MAX_CPUS, BoardSpec, build_virt_fdt
from armvisor.vmm.loaders import (
    DTB_MAX_SIZE,
    Kernel,
    LoadError,
    dtb_address,
    load_initrd,
    load_kernel,
    read_file,
)
from armvisor.vmm.ram import GuestRam

RAM_BASE = 0x4000_0000
DEFAULT_RAM_SIZE = 128 << 20
MAX_RAM_SIZE = 255 << 30  # virt's RAM window below 256 GiB (QEMU's highmem limit without highmem-ecam)
FDT_MAGIC = 0xD00DFEED
RAM_SLOT = 0


class ExitStatus(enum.IntEnum):
    """Exit statuses of ``armvisor run`` (and of the gdb stub's run)."""

    POWER_OFF = 0  # PSCI SYSTEM_OFF
    BAD_INPUT = 1  # unusable command line or image
    RESET = 2  # PSCI SYSTEM_RESET
    GUEST_CRASH = 3  # an exit the VMM cannot serve, an exception loop, a hang
    TIMEOUT = 4  # --max-insns or --timeout ran out
    INTERRUPTED = 130  # SIGINT (128 + 2, as shells report it)


@dataclass(frozen=True)
class GuestStop:
    """The guest is finished: exit with ``status``, saying ``message`` (if any) on stderr."""

    status: int
    message: str = ""


EXIT_REASON_NAMES = {value: name.removeprefix("KVM_EXIT_") for name, value in vars(uapi).items()
                     if name.startswith("KVM_EXIT_")}


def exit_reason_name(reason: int) -> str:
    return EXIT_REASON_NAMES.get(reason, f"exit reason {reason}")


def vcpu_features(vcpu_id: int) -> list[int]:
    """PSCI 0.2+ for all; every vcpu but 0 starts powered off, waiting for CPU_ON."""
    return [KVM_ARM_VCPU_PSCI_0_2, *([KVM_ARM_VCPU_POWER_OFF] if vcpu_id else [])]


def report_to_stderr(message: str) -> None:
    print(f"armvisor: {message}", file=sys.stderr, flush=True)


class VirtMachine:
    """A ``virt`` board running one guest image (see the module docstring)."""

    def __init__(
        self,
        kernel: Path,
        *,
        ram_size: int = DEFAULT_RAM_SIZE,
        cpus: int = 1,
        gic_version: int = 2,
        initrd: Path | None = None,
        append: str = "",
        dtb: Path | None = None,
        serial: BinaryIO | None = None,
        serial_input: BinaryIO | None = None,
        strict_mmio: bool = False,
        dump_dtb: Path | None = None,
        report: Callable[[str], None] = report_to_stderr,
        translate: bool = True,
    ) -> None:
        """Build the board and load the guest; raises :class:`LoadError` for unusable input."""
        if gic_version not in GIC_MAX_CPUS:
            raise LoadError(f"gic-version={gic_version}: armvisor's virt has GICv2 and GICv3")
        if not 1 <= cpus <= GIC_MAX_CPUS[gic_version]:
            raise LoadError(f"-smp {cpus}: virt with GICv{gic_version} takes 1 to {GIC_MAX_CPUS[gic_version]} CPUs")
        if not 0 < ram_size <= MAX_RAM_SIZE:
            raise LoadError(f"-m: RAM size must be between 4K and {MAX_RAM_SIZE >> 30}G")
        self.strict_mmio = strict_mmio
        self.report = report
        self.vm = Kvm().create_vm()
        try:
            self.ram = GuestRam(RAM_BASE, bytearray(ram_size))
        except MemoryError:
            raise LoadError(f"cannot allocate {ram_size >> 20} MiB of guest RAM") from None
        self.vm.set_user_memory_region(RAM_SLOT, RAM_BASE, ram_size, userspace=self.ram.data)
        self.vm.enable_cap(KVM_CAP_ARM_NISV_TO_USER)  # ISV=0 aborts come to us, reported clearly
        self.vm.enable_cap(ARMVISOR_CAP_TRANSLATE, int(translate))
        self.vcpus: list[Vcpu] = []
        for vcpu_id in range(cpus):
            vcpu = self.vm.create_vcpu(vcpu_id)
            vcpu.init(vcpu_features(vcpu_id))
            self.vcpus.append(vcpu)
        self.gic_version = gic_version
        self.vm.create_vgic(gic_version)
        self.bus = MmioBus()
        self.uart = Pl011(output=serial)
        self.rtc = Pl031()
        for device in (self.uart, self.rtc):
            self._connect_irq(device)
            self.bus.register(device)
        self._input_fd = serial_input.fileno() if serial_input is not None else None
        self._unassigned_reported: set[int] = set()
        self._images = (kernel, initrd, dtb, append)
        self._load()
        if dump_dtb is not None:
            try:
                Path(dump_dtb).write_bytes(self.dtb)
            except OSError as err:
                raise LoadError(f"cannot write --dump-dtb {dump_dtb}: {err.strerror}") from None
        self.exit_handlers: dict[int, Callable[[Vcpu, KvmRun], GuestStop | None]] = {
            KVM_EXIT_MMIO: self.handle_mmio,
            KVM_EXIT_SYSTEM_EVENT: self.handle_system_event,
            KVM_EXIT_ARM_NISV: self.handle_arm_nisv,
        }

    # -- set-up --------------------------------------------------------------------------------
    def _connect_irq(self, device: PrimeCellDevice) -> None:
        """Wire the device's interrupt output to its SPI on the vGIC (INTID = 32 + SPI number,
        the one its device-tree node names)."""
        device.irq = lambda level: self.vm.irq_line(VGIC_NR_PRIVATE_IRQS + device.spi, level)

    def _load(self) -> None:
        """Kernel, initrd and device tree into RAM; boot registers of vcpu 0."""
        kernel, initrd, dtb, append = self._images
        self.kernel = load_kernel(kernel, self.ram)
        self.initrd = load_initrd(initrd, self.ram, self.kernel) if initrd is not None else None
        self.dtb = self._device_tree(dtb, append)
        self.dtb_address = dtb_address(self.kernel, self.ram, len(self.dtb), self.initrd)
        self.ram.write(self.dtb_address, self.dtb)
        self._boot(self.vcpus[0], self.kernel)

    def reset(self) -> None:
        """System reset to the boot state (QEMU's qemu_system_reset with -kernel): RAM cleared
        and reloaded, devices and vcpus reset (``KVM_ARM_VCPU_INIT`` again)."""
        self.ram.data[:] = bytes(self.ram.size)
        for device in self.bus.devices:
            device.reset()
        for vcpu in self.vcpus:
            vcpu.init(vcpu_features(vcpu.vcpu_id))
        self._load()

    def _device_tree(self, dtb: Path | None, append: str) -> bytes:
        """The generated tree, or ``-dtb FILE`` (which replaces it, used as given)."""
        if dtb is None:
            board = BoardSpec(ram_base=RAM_BASE, ram_size=self.ram.size, cpus=len(self.vcpus),
                              gic_version=self.gic_version, devices=self.bus.devices,
                              bootargs=append, initrd=self.initrd)
            return build_virt_fdt(board)
        blob = read_file(dtb, "device tree")
        if len(blob) < 8 or int.from_bytes(blob[:4], "big") != FDT_MAGIC:
            raise LoadError(f"{dtb}: not a flattened device tree blob (no 0xd00dfeed magic)")
        if int.from_bytes(blob[4:8], "big") > len(blob) or len(blob) > DTB_MAX_SIZE:
            raise LoadError(f"{dtb}: truncated or larger than 2 MiB device tree blob")
        if append or self.initrd is not None:
            raise LoadError(f"-dtb {dtb}: armvisor uses a given device tree as is; put bootargs "
                            f"and the initrd range in its /chosen node instead of -append/-initrd")
        return blob

    def _boot(self, vcpu: Vcpu, kernel: Kernel) -> None:
        """Primary vcpu registers at entry: PC, and for Linux x0 = device tree (x1-x3 are 0
        after KVM_ARM_VCPU_INIT; PSTATE is EL1h with DAIF masked, the MMU off)."""
        vcpu.set_one_reg(KVM_REG_ARM64_PC, kernel.entry)
        if kernel.is_linux:
            vcpu.set_one_reg(arm64_core_x(0), self.dtb_address)

    # -- interface used by the run loop and the gdb stub ---------------------------------------
    def handle_exit(self, vcpu: Vcpu, run: KvmRun) -> GuestStop | None:
        """Complete a userspace exit; None = resume the guest, a :class:`GuestStop` = done."""
        handler = self.exit_handlers.get(run.exit_reason, self.handle_unexpected)
        return handler(vcpu, run)

    def read_memory(self, address: int, size: int) -> bytes:
        """Guest physical memory (= virtual: the MMU is off); ValueError outside RAM."""
        return self.ram.read(address, size)

    def write_memory(self, address: int, data: bytes) -> None:
        self.ram.write(address, data)

    def poll_devices(self) -> None:
        """Host-side device work between slices: stdin into the UART, RTC alarms."""
        self.rtc.poll()
        if self._input_fd is None:
            return
        while select.select([self._input_fd], [], [], 0)[0]:
            data = os.read(self._input_fd, 4096)
            if not data:
                self._input_fd = None  # end of input: the UART will receive nothing more
                return
            self.uart.feed_input(data)

    @property
    def device_wake_possible(self) -> bool:
        """Whether a device may still raise an interrupt by itself (UART input, RTC alarm)."""
        return self._input_fd is not None or self.rtc.next_deadline() is not None

    def flush(self) -> None:
        self.uart.flush()

    # -- exit handlers (QEMU kvm_arch_handle_exit / kvm_cpu_exec, kvmtool kvm_cpu__start) -------
    def handle_mmio(self, vcpu: Vcpu, run: KvmRun) -> GuestStop | None:
        """KVM_EXIT_MMIO: the owning device answers; an unassigned access is reported once per
        address and reads as zero / is ignored (QEMU on KVM), or with ``strict_mmio`` becomes a
        synchronous external abort in the guest (QEMU with TCG)."""
        mmio = run.mmio
        if self.bus.dispatch(mmio):
            return None
        if mmio.phys_addr not in self._unassigned_reported:
            self._unassigned_reported.add(mmio.phys_addr)
            kind = "write" if mmio.is_write else "read"
            self.report(f"unassigned MMIO {kind} at 0x{mmio.phys_addr:x} (len {mmio.len})")
        if self.strict_mmio:
            vcpu.set_vcpu_events(ext_dabt_pending=True)
        elif not mmio.is_write:
            mmio.data[:mmio.len] = bytes(mmio.len)
        return None

    def handle_system_event(self, vcpu: Vcpu, run: KvmRun) -> GuestStop:
        """PSCI SYSTEM_OFF / SYSTEM_RESET (and RESET2), or a crash the guest reports."""
        event = run.system_event.type
        pc = vcpu.get_one_reg(KVM_REG_ARM64_PC)
        stops = {
            KVM_SYSTEM_EVENT_SHUTDOWN: GuestStop(ExitStatus.POWER_OFF),
            KVM_SYSTEM_EVENT_RESET: GuestStop(ExitStatus.RESET, f"guest requested PSCI SYSTEM_RESET "
                                                                f"(vcpu {vcpu.vcpu_id}, PC 0x{pc:x})"),
            KVM_SYSTEM_EVENT_CRASH: GuestStop(ExitStatus.GUEST_CRASH, f"guest crash: the guest reported a "
                                                                      f"crash (vcpu {vcpu.vcpu_id}, PC 0x{pc:x})"),
        }
        return stops.get(event, GuestStop(ExitStatus.GUEST_CRASH,
                                          f"guest crash: unexpected system event {event} (PC 0x{pc:x})"))

    def handle_arm_nisv(self, vcpu: Vcpu, run: KvmRun) -> GuestStop:
        """A data abort on MMIO without instruction syndrome (ISV=0: a load/store pair, an
        atomic, writeback...): no emulation is possible (QEMU's kvm_arm_handle_dabt_nisv)."""
        pc = vcpu.get_one_reg(KVM_REG_ARM64_PC)
        return GuestStop(ExitStatus.GUEST_CRASH,
                         f"guest crash: guest used an instruction armvisor cannot emulate for MMIO at PC "
                         f"0x{pc:x}, address 0x{run.arm_nisv.fault_ipa:x} (data abort with ISV=0, "
                         f"ESR ISS 0x{run.arm_nisv.esr_iss:x})")

    def handle_unexpected(self, vcpu: Vcpu, run: KvmRun) -> GuestStop:
        pc = vcpu.get_one_reg(KVM_REG_ARM64_PC)
        extra = f", ESR 0x{run.debug.arch.hsr_high << 32 | run.debug.arch.hsr:x}" \
            if run.exit_reason == KVM_EXIT_DEBUG else ""
        return GuestStop(ExitStatus.GUEST_CRASH,
                         f"guest crash: unexpected exit {exit_reason_name(run.exit_reason)} on vcpu "
                         f"{vcpu.vcpu_id} at PC 0x{pc:x}{extra}")
