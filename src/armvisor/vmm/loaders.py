"""Guest image loaders: what ``-kernel``, ``-initrd`` and the device-tree placement do, as QEMU's
``hw/arm/boot.c`` does them for ``-M virt`` on AArch64 (checked against QEMU 7.2).

* An **ELF** (pyelftools): every ``PT_LOAD`` segment is copied to its physical address
  (``p_paddr``) and its ``.bss`` tail zeroed; the vcpu starts at ``e_entry`` with x0 = 0. QEMU
  treats ELF files as bare-metal programs, not Linux: no boot protocol.
* A **Linux arm64 Image** (Documentation/arch/arm64/booting.rst): the 64-byte header has the
  magic ``ARM\\x64`` at offset 56, ``text_offset`` at 8, ``image_size`` at 16, ``flags`` at 24.
  The image goes ``text_offset`` bytes above a 2 MiB aligned base; like QEMU the base is the
  start of RAM, moved up by 2 MiB when ``text_offset`` is below 4 KiB (QEMU keeps its boot stub
  there), and a header with ``image_size`` 0 (kernels before 3.17) means ``text_offset`` 0x80000.
  x0 holds the device tree's address, x1-x3 are 0, the MMU is off. A gzip-compressed Image is
  uncompressed first, as QEMU does.
* Any other file is a **raw binary**; QEMU loads it exactly like a header-less Image, at RAM
  base + 0x80000 (``KERNEL64_LOAD_ADDR``), entered with x0 = device tree address.
  :func:`load_raw` loads a binary at any address.

Initrd and device tree, for a Linux boot (QEMU's ``arm_setup_direct_kernel_boot``): the initrd
starts at RAM base + min(RAM size / 2, 128 MiB) or just past the kernel if that is higher, page
aligned, and is named in ``/chosen`` (``linux,initrd-start``/``-end``); the device tree follows
it, 2 MiB aligned (so it is 8-byte aligned and does not cross a 2 MiB boundary, as booting.rst
requires). For an ELF, QEMU puts the device tree at the RAM base when the program leaves room
below itself; otherwise QEMU writes it to the flash at address 0, which armvisor's ``virt`` does
not have: armvisor then puts it at the top of RAM (page aligned, within one 2 MiB block). armvisor
also loads ``-initrd`` for an ELF (QEMU ignores it), at the Linux address.

Every problem is a :class:`LoadError` with a one-line message naming the file.
"""

from __future__ import annotations

import enum
import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from armvisor.vmm.ram import GuestRam

MiB = 1 << 20
PAGE_SIZE = 4096
KERNEL64_LOAD_ADDR = 0x80000  # QEMU: offset of a header-less Image / raw binary in RAM
BOOTLOADER_MAX_SIZE = 4096  # QEMU: an Image below this text_offset moves up by 2 MiB
IMAGE_ALIGN = 2 * MiB  # booting.rst: the Image base and the device tree's 2 MiB window
INITRD_MAX_OFFSET = 128 * MiB
DTB_MAX_SIZE = 2 * MiB  # booting.rst: "The device tree blob must not exceed 2 megabytes"
GUNZIP_MAX_BYTES = 256 * MiB  # QEMU's LOAD_IMAGE_MAX_GUNZIP_BYTES

ELF_MAGIC = b"\x7fELF"
GZIP_MAGIC = b"\x1f\x8b"
UIMAGE_MAGIC = 0x27051956  # U-Boot legacy image, big-endian at offset 0
ARM64_IMAGE_MAGIC = 0x644D5241  # "ARM\x64", little-endian at offset 56
ARM64_IMAGE_HEADER_SIZE = 64
ARM64_IMAGE_FLAG_BE = 1 << 0  # flags bit 0: kernel endianness, 1 = big-endian


class LoadError(Exception):
    """An image, initrd or device tree that cannot be used; the message is one line."""


class KernelFormat(enum.Enum):
    ELF = "ELF"
    IMAGE = "Linux arm64 Image"
    RAW = "raw binary"


@dataclass(frozen=True)
class Kernel:
    """A loaded kernel: its format, entry point and the span ``[low, high)`` it occupies."""

    format: KernelFormat
    entry: int
    low: int
    high: int

    @property
    def is_linux(self) -> bool:
        """QEMU: "raw images are linux kernels, ELF images are not" -- x0 = device tree."""
        return self.format is not KernelFormat.ELF


@dataclass(frozen=True)
class ImageHeader:
    """The fields of the arm64 Image header that placement needs (booting.rst section 4)."""

    text_offset: int
    image_size: int
    flags: int


def align_up(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def align_down(value: int, alignment: int) -> int:
    return value // alignment * alignment


def read_file(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise LoadError(f"cannot read {what} {path}: {err.strerror}") from None


def _place(ram: GuestRam, path: Path, address: int, data: bytes, memsz: int, what: str) -> None:
    """Copy ``data`` to ``address`` and zero the rest of ``memsz`` bytes, inside RAM."""
    if not ram.contains(address, memsz):
        raise LoadError(f"{path}: {what} 0x{address:x}-0x{address + memsz:x} is outside RAM "
                        f"(0x{ram.base:x}-0x{ram.end:x}; see -m)")
    ram.write(address, data + bytes(memsz - len(data)))


# -- the kernel -------------------------------------------------------------------------------
def load_kernel(path: Path, ram: GuestRam) -> Kernel:
    """Load ``-kernel FILE`` by its format (QEMU's order: ELF, uImage, then Image/raw)."""
    data = read_file(path, "kernel")
    if data.startswith(ELF_MAGIC):
        return load_elf(path, data, ram)
    if len(data) >= 4 and int.from_bytes(data[:4], "big") == UIMAGE_MAGIC:
        raise LoadError(f"{path}: U-Boot uImage files are not supported (use the ELF or the Image)")
    if data.startswith(GZIP_MAGIC):
        data = _gunzip(path, data)
    header = parse_image_header(data)
    if header is None:
        return load_raw(path, data, ram, ram.base + KERNEL64_LOAD_ADDR)
    return load_linux_image(path, data, header, ram)


def _gunzip(path: Path, data: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            out = f.read(GUNZIP_MAX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise LoadError(f"{path}: cannot uncompress the gzip image ({err})") from None
    if len(out) > GUNZIP_MAX_BYTES:
        raise LoadError(f"{path}: the uncompressed image exceeds {GUNZIP_MAX_BYTES >> 20} MiB")
    return out


def load_elf(path: Path, data: bytes, ram: GuestRam) -> Kernel:
    """Copy the PT_LOAD segments of a little-endian ELF64 for AArch64 to their physical
    addresses; return the entry point and the span loaded."""
    try:
        elf = ELFFile(io.BytesIO(data))
        if elf.elfclass != 64 or not elf.little_endian or elf["e_machine"] != "EM_AARCH64":
            raise LoadError(f"{path}: not a little-endian 64-bit AArch64 ELF "
                            f"({elf.elfclass}-bit, {'little' if elf.little_endian else 'big'}-endian, "
                            f"{elf['e_machine']})")
        segments = [(s["p_paddr"], s["p_offset"], s["p_filesz"], s["p_memsz"])
                    for s in elf.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_memsz"]]
        entry = elf["e_entry"]
    except LoadError:
        raise
    except Exception as err:  # noqa: BLE001 - pyelftools raises many kinds on malformed files
        raise LoadError(f"{path}: not a valid ELF file ({type(err).__name__}: {err})") from None
    if not segments:
        raise LoadError(f"{path}: the ELF file has no loadable (PT_LOAD) segment")
    for paddr, offset, filesz, memsz in segments:
        if filesz > memsz:
            raise LoadError(f"{path}: segment at 0x{paddr:x} has more file data than memory size")
        if offset + filesz > len(data):
            raise LoadError(f"{path}: the file is truncated (segment at 0x{paddr:x})")
        _place(ram, path, paddr, data[offset:offset + filesz], memsz, "segment")
    if not ram.contains(entry, 4):
        raise LoadError(f"{path}: entry point 0x{entry:x} is outside RAM (0x{ram.base:x}-0x{ram.end:x})")
    low = min(paddr for paddr, *_ in segments)
    high = max(paddr + memsz for paddr, _, _, memsz in segments)
    return Kernel(KernelFormat.ELF, entry, low, high)


def parse_image_header(data: bytes) -> ImageHeader | None:
    """The arm64 Image header of ``data``, or None when the magic is absent."""
    if len(data) < ARM64_IMAGE_HEADER_SIZE or int.from_bytes(data[56:60], "little") != ARM64_IMAGE_MAGIC:
        return None
    field = lambda offset: int.from_bytes(data[offset:offset + 8], "little")  # noqa: E731
    return ImageHeader(text_offset=field(8), image_size=field(16), flags=field(24))


def image_load_offset(header: ImageHeader) -> int:
    """Offset from the RAM base where QEMU loads an Image with this header."""
    if header.image_size == 0:
        return KERNEL64_LOAD_ADDR
    offset = header.text_offset
    return offset + IMAGE_ALIGN if offset < BOOTLOADER_MAX_SIZE else offset


def load_linux_image(path: Path, data: bytes, header: ImageHeader, ram: GuestRam) -> Kernel:
    """Load an arm64 Image at its text_offset; entry is its first byte."""
    if header.flags & ARM64_IMAGE_FLAG_BE:
        raise LoadError(f"{path}: the Image header says big-endian kernel (flags bit 0); armvisor "
                        f"runs little-endian guests")
    base = ram.base + image_load_offset(header)
    size = max(len(data), header.image_size)
    _place(ram, path, base, data, size, "Image")
    return Kernel(KernelFormat.IMAGE, base, base, base + size)


def load_raw(path: Path, data: bytes, ram: GuestRam, address: int) -> Kernel:
    """Load a raw binary at ``address``, entered at its first byte."""
    if not data:
        raise LoadError(f"{path}: the file is empty")
    _place(ram, path, address, data, len(data), "image")
    return Kernel(KernelFormat.RAW, address, address, address + len(data))


# -- initrd and device tree ---------------------------------------------------------------------
def initrd_address(kernel: Kernel, ram: GuestRam) -> int:
    """QEMU's initrd_start: RAM base + min(RAM/2, 128 MiB), or past the kernel, page aligned."""
    start = ram.base + min(ram.size // 2, INITRD_MAX_OFFSET)
    if kernel.low < start:  # a kernel above the initrd address does not push it up
        start = max(start, kernel.high)
    return align_up(start, PAGE_SIZE)


def load_initrd(path: Path, ram: GuestRam, kernel: Kernel) -> tuple[int, int]:
    """Load ``-initrd FILE``; returns its ``(start, end)`` for /chosen."""
    data = read_file(path, "initrd")
    start = initrd_address(kernel, ram)
    end = start + len(data)
    if kernel.low < end and start < kernel.high:
        raise LoadError(f"{path}: the initrd at 0x{start:x}-0x{end:x} would overlap the kernel")
    if end > ram.end:
        raise LoadError(f"{path}: the initrd ({len(data)} bytes at 0x{start:x}) does not fit in RAM "
                        f"(ends at 0x{ram.end:x}; see -m)")
    ram.write(start, data)
    return start, end


def _top_of_ram(ram: GuestRam, size: int) -> int:
    """The highest page-aligned place for ``size`` bytes that crosses no 2 MiB boundary."""
    address = align_down(ram.end - size, PAGE_SIZE)
    boundary = align_down(address + size - 1, IMAGE_ALIGN)
    return align_down(boundary - size, PAGE_SIZE) if address < boundary else address


def dtb_address(kernel: Kernel, ram: GuestRam, dtb_size: int, initrd: tuple[int, int] | None) -> int:
    """Where the device tree goes (see the module docstring)."""
    if dtb_size > DTB_MAX_SIZE:
        raise LoadError(f"the device tree is {dtb_size} bytes; booting.rst allows at most 2 MiB")
    if kernel.is_linux:
        after = initrd[1] if initrd is not None else initrd_address(kernel, ram)
        address = align_up(after, IMAGE_ALIGN)
    elif kernel.low >= ram.base + dtb_size:
        address = ram.base  # below the program, as QEMU does
    else:
        address = _top_of_ram(ram, dtb_size)
    if address + dtb_size > ram.end:
        raise LoadError("not enough space for the device tree after the kernel and initrd (see -m)")
    taken = [(kernel.low, kernel.high), *([initrd] if initrd is not None else [])]
    if any(low < address + dtb_size and address < high for low, high in taken):
        raise LoadError(f"no room for the device tree at 0x{address:x}: the guest image is there (see -m)")
    return address
