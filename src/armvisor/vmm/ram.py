"""Guest RAM as the VMM sees it: the ``bytearray`` it hands to ``KVM_SET_USER_MEMORY_REGION``
(shared with the VM, never copied) and its guest physical window."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GuestRam:
    """``data`` is guest physical memory from ``base``."""

    base: int
    data: bytearray

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def end(self) -> int:
        """First address past RAM."""
        return self.base + len(self.data)

    def contains(self, address: int, length: int) -> bool:
        return self.base <= address and address + length <= self.end and length >= 0

    def _offset(self, address: int, length: int) -> int:
        if not self.contains(address, length):
            raise ValueError(f"0x{address:x}-0x{address + length:x} is outside RAM "
                             f"(0x{self.base:x}-0x{self.end:x})")
        return address - self.base

    def read(self, address: int, length: int) -> bytes:
        """``length`` bytes at ``address``; ValueError outside RAM."""
        offset = self._offset(address, length)
        return bytes(self.data[offset:offset + length])

    def write(self, address: int, data: bytes) -> None:
        """Store ``data`` at ``address``; ValueError outside RAM."""
        offset = self._offset(address, len(data))
        self.data[offset:offset + len(data)] = data
