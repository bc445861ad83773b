"""Guest physical memory: RAM regions backed by ``bytearray`` (KVM memory slots seen from the PE).

An address with no RAM behind it is not an error here: the PE reports it as a stage-2 abort to
EL2 (see :mod:`armvisor.cpu.access`), which is how MMIO reaches the hypervisor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT


@dataclass
class RamRegion:
    """A contiguous RAM range. ``data`` is shared, never copied."""

    base: int
    data: bytearray
    readonly: bool = False
    views: dict[int, memoryview] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.base % PAGE_SIZE or len(self.data) % PAGE_SIZE or not self.data:
            raise ValueError(
                f"RAM region at 0x{self.base:x} of 0x{len(self.data):x} bytes is not page aligned"
            )
        raw = memoryview(self.data)
        self.views = {1: raw, 2: raw.cast("H"), 4: raw.cast("I"), 8: raw.cast("Q")}

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def end(self) -> int:
        return self.base + len(self.data)


class PhysicalMemory:
    """The guest's physical address space: a sorted set of non-overlapping RAM regions."""

    def __init__(self) -> None:
        self.regions: list[RamRegion] = []
        self.generation = 0  # bumped on every layout change so accessors can rebuild
        # The region that fast paths (accessors, translated code) serve directly: the largest
        # writable one -- the guest's RAM rather than a ROM -- else the largest.
        self.main: RamRegion | None = None
        # Pages some PE has decoded or translated instructions from (a superset: a PE that
        # drops its decoded code leaves its pages here until the next store to them), and the
        # PEs' callbacks that drop what they hold of a page a store is about to change.
        self.code_pages: set[int] = set()
        self.code_listeners: list[Callable[[int], None]] = []

    def code_written(self, page: int) -> None:
        """A store hits a page holding instructions: every PE forgets what it decoded or
        translated from it (stores by one PE reach the instructions all PEs execute)."""
        for listener in self.code_listeners:
            listener(page)
        self.code_pages.discard(page)

    def add_ram(self, base: int, data: bytearray | int, readonly: bool = False) -> RamRegion:
        """Map ``data`` (or that many zero bytes) at ``base``."""
        buf = bytearray(data) if isinstance(data, int) else data
        region = RamRegion(base, buf, readonly)
        for other in self.regions:
            if region.base < other.end and other.base < region.end:
                raise ValueError(
                    f"RAM region 0x{region.base:x}-0x{region.end:x} overlaps "
                    f"0x{other.base:x}-0x{other.end:x}"
                )
        self.regions.append(region)
        self._changed()
        return region

    def remove_ram(self, base: int) -> None:
        self.regions = [r for r in self.regions if r.base != base]
        self._changed()

    def _changed(self) -> None:
        self.regions.sort(key=lambda r: r.base)
        self.main = max(self.regions, key=lambda r: (not r.readonly, r.size), default=None)
        self.generation += 1

    def find(self, pa: int, size: int = 1) -> RamRegion | None:
        """The region holding all of ``[pa, pa+size)``, or None."""
        for region in self.regions:
            if region.base <= pa and pa + size <= region.end:
                return region
        return None

    def read(self, pa: int, size: int) -> bytes:
        """Bytes of RAM for loaders and debuggers; raises ValueError outside RAM."""
        region = self.find(pa, size)
        if region is None:
            raise ValueError(f"no RAM at 0x{pa:x}..0x{pa + size:x}")
        off = pa - region.base
        return bytes(region.data[off:off + size])

    def write(self, pa: int, data: bytes) -> None:
        """Write RAM for loaders and debuggers (read-only slots included); ValueError outside RAM."""
        region = self.find(pa, len(data))
        if region is None:
            raise ValueError(f"no RAM at 0x{pa:x}..0x{pa + len(data):x}")
        off = pa - region.base
        region.data[off:off + len(data)] = data
