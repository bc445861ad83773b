"""The debugger's breakpoints and watchpoints, and the ``KVM_SET_GUEST_DEBUG`` state they need
(QEMU's ``kvm_arch_insert_sw_breakpoint``/``insert_hw_breakpoint``/``insert_hw_watchpoint`` and
``kvm_arm_copy_hw_debug_data`` in target/arm/kvm64.c; Arm ARM D19.3 DBGBCR/DBGWCR).

* Software breakpoints (``Z0``) replace the instruction with ``BRK #0`` in guest memory; the
  original is kept and shown to gdb on reads (as gdbserver shadows its breakpoints).
* Hardware breakpoints (``Z1``): DBGBCR E=1, PMC=0b11 (EL1 and EL0), BAS=0b1111.
* Watchpoints (``Z2`` write, ``Z3`` read, ``Z4`` access): DBGWCR E=1, PAC=0b11, LSC by kind;
  a range is covered exactly by aligned pieces, each either up to 8 bytes of one doubleword
  (byte-address select, BAS) or an aligned power-of-two block of 16 bytes or more (MASK).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from armvisor import kvm as K

BRK_0 = 0xD420_0000  # BRK #0, the instruction QEMU's kvm_arch_insert_sw_breakpoint writes
BRK_0_BYTES = BRK_0.to_bytes(4, "little")

# DBGBCR<n>_EL1 / DBGWCR<n>_EL1 fields (Arm ARM D19.3.2, D19.3.11).
DBGBCR_E = 1 << 0
DBGBCR_PMC_EL1_EL0 = 0b11 << 1
DBGBCR_BAS_A64 = 0xF << 5
DBGWCR_E = 1 << 0
DBGWCR_PAC_EL1_EL0 = 0b11 << 1
DBGWCR_LSC_SHIFT = 3
DBGWCR_BAS_SHIFT = 5
DBGWCR_MASK_SHIFT = 24
DBGWCR_MASK_MAX = 31

WATCH_WRITE, WATCH_READ, WATCH_ACCESS = 2, 3, 4
# gdb Z type -> (DBGWCR.LSC, stop-reply key).
WATCH_KINDS: dict[int, tuple[int, str]] = {
    WATCH_WRITE: (0b10, "watch"),
    WATCH_READ: (0b01, "rwatch"),
    WATCH_ACCESS: (0b11, "awatch"),
}


class DebugResourceError(Exception):
    """No slot left or an address the debug hardware cannot watch."""


def watch_pieces(addr: int, length: int) -> list[tuple[int, int]]:
    """(DBGWVR, DBGWCR BAS|MASK bits) pieces covering exactly ``[addr, addr + length)``."""
    pieces = []
    end = addr + length
    while addr < end:
        align = addr & -addr if addr else 1 << DBGWCR_MASK_MAX
        size = min(align, 1 << ((end - addr).bit_length() - 1), 1 << DBGWCR_MASK_MAX)
        if size > 8:
            mask = size.bit_length() - 1
            pieces.append((addr, (0xFF << DBGWCR_BAS_SHIFT) | (mask << DBGWCR_MASK_SHIFT)))
            addr += size
            continue
        top = min(end, (addr | 7) + 1)
        bas = ((1 << (top - addr)) - 1) << (addr & 7)
        pieces.append((addr & ~7, bas << DBGWCR_BAS_SHIFT))
        addr = top
    return pieces


def _overlay(target: bytearray, target_addr: int, source: bytes, source_addr: int) -> None:
    """Copy into ``target`` (memory from ``target_addr``) the bytes of ``source`` (memory from
    ``source_addr``) that fall inside it."""
    low = max(target_addr, source_addr)
    high = min(target_addr + len(target), source_addr + len(source))
    if low < high:
        target[low - target_addr:high - target_addr] = source[low - source_addr:high - source_addr]


@dataclass
class Watchpoint:
    kind: int
    addr: int
    length: int
    slots: list[int] = field(default_factory=list)

    def contains(self, address: int) -> bool:
        return self.addr <= address < self.addr + self.length

    def distance(self, address: int) -> int:
        return 0 if self.contains(address) else min(abs(address - self.addr),
                                                     abs(address - (self.addr + self.length - 1)))


class DebugPoints:
    """Breakpoints and watchpoints shared by every vcpu (QEMU keeps one list for all)."""

    def __init__(self, read_memory: Callable[[int, int], bytes],
                 write_memory: Callable[[int, bytes], None], num_bps: int, num_wps: int) -> None:
        """``write_memory`` must make written instructions visible to the vcpus (the host's
        I-cache maintenance, :meth:`Vm.flush_icache_range`)."""
        self._read = read_memory
        self._write = write_memory
        self.num_bps = num_bps
        self.num_wps = num_wps
        self.sw: dict[int, bytes] = {}  # address -> original instruction bytes
        self.hw: list[int | None] = [None] * num_bps
        self.wp_slots: list[Watchpoint | None] = [None] * num_wps
        self.watchpoints: list[Watchpoint] = []

    # -- software breakpoints ------------------------------------------------------------------
    def insert_sw(self, addr: int) -> None:
        if addr in self.sw:
            return
        original = self._read(addr, 4)
        self._write(addr, BRK_0_BYTES)
        self.sw[addr] = original

    def remove_sw(self, addr: int) -> None:
        original = self.sw.pop(addr, None)
        if original is not None:
            self._write(addr, original)

    def lift_sw(self, addr: int) -> bool:
        """Put the original instruction back for a step over it; True if there was a BRK."""
        if addr not in self.sw:
            return False
        self._write(addr, self.sw[addr])
        return True

    def restore_sw(self, addr: int) -> None:
        if addr in self.sw:
            self._write(addr, BRK_0_BYTES)

    def shadow_read(self, addr: int, data: bytes) -> bytes:
        """Memory as the guest wrote it: inserted BRKs replaced by the originals."""
        out = bytearray(data)
        for bp, original in self.sw.items():
            _overlay(out, addr, original, bp)
        return bytes(out)

    def shadow_write(self, addr: int, data: bytes) -> None:
        """Write guest memory, keeping inserted BRKs in place and their originals updated."""
        self._write(addr, data)
        for bp in self.sw:
            if bp + 4 > addr and bp < addr + len(data):
                original = bytearray(self.sw[bp])
                _overlay(original, bp, data, addr)
                self.sw[bp] = bytes(original)
                self._write(bp, BRK_0_BYTES)

    # -- hardware breakpoints --------------------------------------------------------------------
    def insert_hw(self, addr: int) -> None:
        if addr in self.hw:
            return
        if None not in self.hw:
            raise DebugResourceError(f"all {self.num_bps} hardware breakpoints are in use")
        self.hw[self.hw.index(None)] = addr & ~3

    def remove_hw(self, addr: int) -> None:
        if addr & ~3 in self.hw:
            self.hw[self.hw.index(addr & ~3)] = None

    # -- watchpoints -----------------------------------------------------------------------------
    def insert_watch(self, kind: int, addr: int, length: int) -> None:
        if length <= 0:
            raise DebugResourceError("watchpoint length must be positive")
        if any(w.kind == kind and w.addr == addr and w.length == length for w in self.watchpoints):
            return
        pieces = watch_pieces(addr, length)
        free = [n for n, slot in enumerate(self.wp_slots) if slot is None]
        if len(pieces) > len(free):
            raise DebugResourceError(f"{len(pieces)} watchpoint registers needed, {len(free)} free")
        wp = Watchpoint(kind, addr, length, free[:len(pieces)])
        for n in wp.slots:
            self.wp_slots[n] = wp
        self.watchpoints.append(wp)

    def remove_watch(self, kind: int, addr: int, length: int) -> None:
        for wp in self.watchpoints:
            if (wp.kind, wp.addr, wp.length) == (kind, addr, length):
                for n in wp.slots:
                    self.wp_slots[n] = None
                self.watchpoints.remove(wp)
                return

    def watchpoint_at(self, far: int) -> Watchpoint | None:
        """The watchpoint a hit at ``far`` (run->debug.arch.far) belongs to: the one whose range
        holds it, else the nearest (an access may start below the watched bytes)."""
        if not self.watchpoints:
            return None
        return min(self.watchpoints, key=lambda w: w.distance(far))

    # -- KVM_SET_GUEST_DEBUG -----------------------------------------------------------------
    def control(self) -> int:
        """USE_SW_BP / USE_HW as QEMU's kvm_arch_update_guest_debug sets them (0 when idle)."""
        control = 0
        if self.sw:
            control |= K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_USE_SW_BP
        if any(a is not None for a in self.hw) or self.watchpoints:
            control |= K.KVM_GUESTDBG_ENABLE | K.KVM_GUESTDBG_USE_HW
        return control

    def arch(self) -> K.KvmGuestDebugArch:
        arch = K.KvmGuestDebugArch()
        for n, addr in enumerate(self.hw):
            if addr is not None:
                arch.dbg_bvr[n] = addr
                arch.dbg_bcr[n] = DBGBCR_E | DBGBCR_PMC_EL1_EL0 | DBGBCR_BAS_A64
        for wp in self.watchpoints:
            lsc = WATCH_KINDS[wp.kind][0]
            for n, (wvr, select) in zip(wp.slots, watch_pieces(wp.addr, wp.length)):
                arch.dbg_wvr[n] = wvr
                arch.dbg_wcr[n] = DBGWCR_E | DBGWCR_PAC_EL1_EL0 | (lsc << DBGWCR_LSC_SHIFT) | select
        return arch

    def clear(self) -> None:
        """Remove everything (detach): the BRKs leave guest memory."""
        for addr in list(self.sw):
            self.remove_sw(addr)
        self.hw = [None] * self.num_bps
        self.wp_slots = [None] * self.num_wps
        self.watchpoints.clear()
