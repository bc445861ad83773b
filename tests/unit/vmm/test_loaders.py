"""Loaders: ELF segments (checked against objcopy's flat image), the arm64 Image header of
booting.rst (a synthetic Image built here), and the addresses QEMU 7.2's ``-M virt`` uses for
raw images, initrds and device trees (observed with qemu-system-aarch64: a raw image at
0x40080000 gets x0 = 0x44000000 with 128M; with a 5000-byte initrd 0x44200000; with -m 1G and
that initrd 0x48200000; an ELF at 0x40200000 finds the DTB at 0x40000000)."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from armvisor.toolchain import tool
from armvisor.vmm.loaders import (
    ARM64_IMAGE_MAGIC,
    Kernel,
    KernelFormat,
    LoadError,
    dtb_address,
    load_initrd,
    load_kernel,
    parse_image_header,
)
from armvisor.vmm.ram import GuestRam
from guests import build_guest

RAM_BASE = 0x4000_0000
MiB = 1 << 20
needs_toolchain = pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None,
                                     reason="AArch64 cross toolchain not installed")


def ram(size: int = 128 * MiB) -> GuestRam:
    return GuestRam(RAM_BASE, bytearray(size))


def arm64_image(body: bytes, text_offset: int, image_size: int, flags: int = 0b1010) -> bytes:
    """An Image per booting.rst section 4: code0/code1, text_offset, image_size, flags,
    res2-res4, magic "ARM\\x64" at 56, res5; ``body`` follows the 64-byte header."""
    header = b"".join([
        (0x14000010).to_bytes(4, "little"),  # code0: b +0x40 (past the header)
        bytes(4),  # code1
        text_offset.to_bytes(8, "little"), image_size.to_bytes(8, "little"), flags.to_bytes(8, "little"),
        bytes(24), ARM64_IMAGE_MAGIC.to_bytes(4, "little"), bytes(4),
    ])
    assert len(header) == 64 and header[56:60] == b"ARM\x64"
    return header + body


@pytest.fixture(scope="module")
def hello_elf() -> Path:
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.skip("AArch64 cross toolchain not installed")
    return build_guest("hello")


# -- ELF ---------------------------------------------------------------------------------------
def test_elf_segments_match_objcopy(hello_elf: Path, tmp_path: Path) -> None:
    flat = tmp_path / "hello.bin"
    subprocess.run([tool("objcopy"), "-O", "binary", str(hello_elf), str(flat)], check=True)
    memory = ram()
    kernel = load_kernel(hello_elf, memory)
    image = flat.read_bytes()
    assert memory.read(RAM_BASE, len(image)) == image
    assert (kernel.format, kernel.entry, kernel.low, kernel.is_linux) == (KernelFormat.ELF, RAM_BASE, RAM_BASE, False)
    assert kernel.high >= RAM_BASE + len(image)


def patched(tmp_path: Path, source: Path, offset: int, data: bytes) -> Path:
    blob = bytearray(source.read_bytes())
    blob[offset:offset + len(data)] = data
    out = tmp_path / "patched.elf"
    out.write_bytes(blob)
    return out


@pytest.mark.parametrize(("offset", "data", "message"), [
    (4, b"\x01", "not a"),  # EI_CLASS = ELFCLASS32
    (5, b"\x02", "not a"),  # EI_DATA = ELFDATA2MSB
    (18, (62).to_bytes(2, "little"), "EM_X86_64"),  # e_machine
    (24, (0x1000).to_bytes(8, "little"), "entry point 0x1000 is outside RAM"),  # e_entry
])
def test_elf_header_errors(hello_elf: Path, tmp_path: Path, offset: int, data: bytes, message: str) -> None:
    with pytest.raises(LoadError, match=message) as err:
        load_kernel(patched(tmp_path, hello_elf, offset, data), ram())
    assert "\n" not in str(err.value)


def test_elf_host_executable_rejected() -> None:
    with pytest.raises(LoadError, match="not a little-endian 64-bit AArch64 ELF"):
        load_kernel(Path(sys.executable), ram())


def test_elf_truncated(hello_elf: Path, tmp_path: Path) -> None:
    short = tmp_path / "short.elf"
    short.write_bytes(hello_elf.read_bytes()[:300])
    with pytest.raises(LoadError, match="truncated|not a valid ELF"):
        load_kernel(short, ram())


def test_elf_segment_outside_ram(hello_elf: Path) -> None:
    with pytest.raises(LoadError, match="outside RAM"):
        load_kernel(hello_elf, GuestRam(RAM_BASE + MiB, bytearray(MiB)))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="cannot read kernel"):
        load_kernel(tmp_path / "nothing", ram())


# -- Image and raw ---------------------------------------------------------------------------
def test_image_header_fields() -> None:
    header = parse_image_header(arm64_image(b"\x00" * 16, 0x80000, 0x1234000, flags=0b1010))
    assert (header.text_offset, header.image_size, header.flags) == (0x80000, 0x1234000, 0b1010)
    assert parse_image_header(b"\x00" * 64) is None
    assert parse_image_header(arm64_image(b"", 0, 0)[:60]) is None


@pytest.mark.parametrize(("text_offset", "image_size", "load"), [
    (0x80000, 0x100000, 0x80000),  # booting.rst: text_offset above a 2 MiB aligned base
    (0x0, 0x100000, 2 * MiB),  # QEMU keeps its boot stub at the RAM base: the next 2 MiB
    (0x200000, 0x100000, 0x200000),
    (0x12345, 0, 0x80000),  # image_size 0: text_offset is not valid, 0x80000 (pre-3.17 kernels)
])
def test_image_placement(tmp_path: Path, text_offset: int, image_size: int, load: int) -> None:
    body = bytes(range(256)) * 8
    path = tmp_path / "Image"
    path.write_bytes(arm64_image(body, text_offset, image_size))
    memory = ram()
    kernel = load_kernel(path, memory)
    assert (kernel.format, kernel.entry, kernel.is_linux) == (KernelFormat.IMAGE, RAM_BASE + load, True)
    assert memory.read(RAM_BASE + load, 64 + len(body)) == path.read_bytes()
    assert kernel.high == RAM_BASE + load + max(image_size, 64 + len(body))


def test_gzip_image(tmp_path: Path) -> None:
    plain = arm64_image(b"\x11" * 100, 0x80000, 0x10000)
    path = tmp_path / "Image.gz"
    path.write_bytes(gzip.compress(plain))
    memory = ram()
    kernel = load_kernel(path, memory)
    assert kernel.format is KernelFormat.IMAGE and memory.read(kernel.entry, len(plain)) == plain


def test_big_endian_image_rejected(tmp_path: Path) -> None:
    path = tmp_path / "Image"
    path.write_bytes(arm64_image(b"", 0x80000, 0x1000, flags=0b1011))
    with pytest.raises(LoadError, match="big-endian"):
        load_kernel(path, ram())


def test_raw_binary_at_qemu_kernel64_load_addr(tmp_path: Path) -> None:
    path = tmp_path / "guest.bin"
    path.write_bytes(b"\x1f\x20\x03\xd5" * 4)  # nop x4: no Image magic
    memory = ram()
    kernel = load_kernel(path, memory)
    assert (kernel.format, kernel.entry, kernel.is_linux) == (KernelFormat.RAW, 0x4008_0000, True)
    assert memory.read(0x4008_0000, 16) == path.read_bytes()


def test_uimage_rejected(tmp_path: Path) -> None:
    path = tmp_path / "uImage"
    path.write_bytes((0x27051956).to_bytes(4, "big") + bytes(60))
    with pytest.raises(LoadError, match="uImage"):
        load_kernel(path, ram())


# -- initrd and device tree (QEMU's addresses) -------------------------------------------------
LINUX = Kernel(KernelFormat.RAW, 0x4008_0000, 0x4008_0000, 0x4008_1000)


@pytest.mark.parametrize(("ram_size", "initrd_start", "dtb"), [
    (128 * MiB, 0x4400_0000, 0x4420_0000), (1024 * MiB, 0x4800_0000, 0x4820_0000),
])
def test_initrd_and_dtb_like_qemu(tmp_path: Path, ram_size: int, initrd_start: int, dtb: int) -> None:
    initrd = tmp_path / "initrd"
    initrd.write_bytes(bytes(range(250)) * 20)  # 5000 bytes
    memory = ram(ram_size)
    start, end = load_initrd(initrd, memory, LINUX)
    assert (start, end) == (initrd_start, initrd_start + 5000)
    assert memory.read(start, 5000) == initrd.read_bytes()
    assert dtb_address(LINUX, memory, 0x2000, (start, end)) == dtb


def test_dtb_without_initrd_like_qemu() -> None:
    assert dtb_address(LINUX, ram(), 0x2000, None) == 0x4400_0000


def test_initrd_after_a_large_kernel(tmp_path: Path) -> None:
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"x" * 10)
    big = Kernel(KernelFormat.IMAGE, 0x4008_0000, 0x4008_0000, 0x4500_0001)
    assert load_initrd(initrd, ram(), big)[0] == 0x4500_1000  # page aligned past the kernel


def test_initrd_too_big(tmp_path: Path) -> None:
    initrd = tmp_path / "initrd"
    initrd.write_bytes(bytes(65 * MiB))
    with pytest.raises(LoadError, match="does not fit in RAM"):
        load_initrd(initrd, ram(), LINUX)


def test_elf_dtb_at_ram_base_when_room_below() -> None:
    elf = Kernel(KernelFormat.ELF, 0x4020_0000, 0x4020_0000, 0x4021_0000)
    assert dtb_address(elf, ram(), 0x2000, None) == RAM_BASE


@pytest.mark.parametrize(("ram_size", "dtb_size", "address"), [
    (128 * MiB, 0x2000, RAM_BASE + 128 * MiB - 0x2000),
    (MiB, 0x1800, RAM_BASE + MiB - 0x2000),
    (4 * MiB + 0x1000, 0x2000, RAM_BASE + 4 * MiB - 0x2000),  # not across the 2 MiB boundary
])
def test_elf_at_ram_base_dtb_at_top_of_ram(ram_size: int, dtb_size: int, address: int) -> None:
    elf = Kernel(KernelFormat.ELF, RAM_BASE, RAM_BASE, RAM_BASE + 0x10000)
    assert dtb_address(elf, ram(ram_size), dtb_size, None) == address


def test_dtb_over_2mib_rejected() -> None:
    with pytest.raises(LoadError, match="2 MiB"):
        dtb_address(LINUX, ram(), 2 * MiB + 1, None)
