"""A minimal machine with ``VirtMachine``'s interface to the gdb stub (vm, vcpus, handle_exit,
read_memory, write_memory, reset) on armvisor's KVM API, for in-process gdbstub unit tests.

Devices: a PL011 whose data register goes to stdout and whose flag register reads "TX empty";
every other MMIO reads as zero and ignores writes. PSCI SYSTEM_OFF/RESET end the run with 0/2.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from elftools.elf.elffile import ELFFile

from armvisor import kvm as K

RAM_BASE = 0x4000_0000
RAM_SIZE = 16 << 20
UART_DR = 0x0900_0000
UART_FR = 0x0900_0018
UARTFR_TXFE_RXFE = 0x90
BOOT_PSTATE = 0x3C5  # EL1h, DAIF masked


@dataclass(frozen=True)
class GuestStop:
    status: int
    message: str = ""


SYSTEM_EVENT_STATUS = {K.KVM_SYSTEM_EVENT_SHUTDOWN: 0, K.KVM_SYSTEM_EVENT_RESET: 2, K.KVM_SYSTEM_EVENT_CRASH: 3}


class MiniMachine:
    def __init__(self, elf_path: str, cpus: int = 1, output=None) -> None:
        self.output = output or sys.stdout.buffer
        with open(elf_path, "rb") as f:
            elf = ELFFile(f)
            self.segments = [(s["p_paddr"], s.data(), s["p_memsz"]) for s in elf.iter_segments()
                             if s["p_type"] == "PT_LOAD"]
            self.entry = elf["e_entry"]
        self.vm = K.Kvm().create_vm()
        self.ram = bytearray(RAM_SIZE)
        self.vm.set_user_memory_region(0, RAM_BASE, RAM_SIZE, userspace=self.ram)
        self.vcpus = [self.vm.create_vcpu(n) for n in range(cpus)]
        self.reset()

    def reset(self) -> None:
        self.ram[:] = bytes(RAM_SIZE)
        for addr, data, _ in self.segments:
            self.write_memory(addr, data)
        for n, vcpu in enumerate(self.vcpus):
            features = [K.KVM_ARM_VCPU_PSCI_0_2] + ([K.KVM_ARM_VCPU_POWER_OFF] if n else [])
            vcpu.init(features)
            vcpu.set_one_reg(K.KVM_REG_ARM64_PC, self.entry)
            vcpu.set_one_reg(K.KVM_REG_ARM64_PSTATE, BOOT_PSTATE)

    def _offset(self, addr: int, size: int) -> int:
        if not (RAM_BASE <= addr and addr + size <= RAM_BASE + RAM_SIZE):
            raise ValueError(f"0x{addr:x}+{size} is outside RAM")
        return addr - RAM_BASE

    def read_memory(self, addr: int, size: int) -> bytes:
        off = self._offset(addr, size)
        return bytes(self.ram[off:off + size])

    def write_memory(self, addr: int, data: bytes) -> None:
        off = self._offset(addr, len(data))
        self.ram[off:off + len(data)] = data

    def handle_exit(self, vcpu: K.Vcpu, run: K.KvmRun) -> GuestStop | None:
        if run.exit_reason == K.KVM_EXIT_MMIO:
            mmio = run.mmio
            if mmio.is_write:
                if mmio.phys_addr == UART_DR:
                    self.output.write(bytes(mmio.data[:1]))
                    self.output.flush()
            else:
                value = UARTFR_TXFE_RXFE if mmio.phys_addr == UART_FR else 0
                mmio.data[:] = value.to_bytes(8, "little")
            return None
        if run.exit_reason == K.KVM_EXIT_SYSTEM_EVENT:
            status = SYSTEM_EVENT_STATUS.get(run.system_event.type, 3)
            return GuestStop(status, "" if status == 0 else f"system event {run.system_event.type}")
        return GuestStop(3, f"unexpected exit {run.exit_reason}")
