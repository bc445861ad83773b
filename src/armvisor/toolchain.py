"""Build guest code with Debian's AArch64 cross toolchain (``gcc-aarch64-linux-gnu``).

Tests, examples and benchmarks build their guests through this one helper:

* :func:`assemble` turns an assembly snippet into its raw little-endian machine code;
* :func:`build_elf` compiles freestanding C and assembly into an ELF linked at the RAM base of
  QEMU's ``virt`` board (0x4000_0000).

Results are cached by a hash of everything that goes into them (tool versions, flags, the text
of every source, header and link script) in :func:`build_dir`, so repeated test runs only pay
for a file copy. ``python -m armvisor.toolchain`` reports which tools it finds.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

CROSS_PREFIX = "aarch64-linux-gnu-"
DEBIAN_PACKAGES = ("gcc-aarch64-linux-gnu", "binutils-aarch64-linux-gnu")
TOOLS = ("gcc", "as", "objcopy")
RAM_BASE = 0x4000_0000  # QEMU virt: RAM starts at 1 GiB

# Freestanding code for a PE whose MMU is off: all data accesses are to Device memory, so no
# unaligned accesses (-mstrict-align), and no FP/SIMD registers unless a guest asks for them.
CFLAGS = (
    "-ffreestanding", "-nostdlib", "-mgeneral-regs-only", "-mstrict-align", "-O2", "-fno-pic",
    "-static", "-g", "-Wall", "-Wextra", "-fno-stack-protector", "-fno-asynchronous-unwind-tables",
    "-fno-tree-loop-distribute-patterns",
)
# -n: no page alignment of segments, so nothing is loaded below the link address.
LDFLAGS = ("-Wl,--build-id=none", "-Wl,-n", "-Wl,--no-warn-rwx-segments")


class ToolchainMissing(RuntimeError):
    """The AArch64 cross tools are not installed."""

    def __init__(self, tool: str) -> None:
        super().__init__(
            f"{tool} not found: install the AArch64 cross toolchain "
            f"(Debian: apt-get install {' '.join(DEBIAN_PACKAGES)})"
        )


class BuildError(RuntimeError):
    """A compiler, assembler or linker run failed; the message holds its diagnostics."""


def tool(name: str) -> str:
    """Path of the cross tool ``aarch64-linux-gnu-<name>``; raises :class:`ToolchainMissing`."""
    path = shutil.which(CROSS_PREFIX + name)
    if path is None:
        raise ToolchainMissing(CROSS_PREFIX + name)
    return path


@functools.cache
def tool_version(name: str) -> str:
    """First line of ``<tool> --version`` (part of every cache key)."""
    out = subprocess.run([tool(name), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.partition("\n")[0]


def build_dir() -> Path:
    """Where cached builds live: ``$ARMVISOR_BUILD_DIR``, else ``~/.cache/armvisor/build``."""
    env = os.environ.get("ARMVISOR_BUILD_DIR")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "armvisor" / "build"


def _run(argv: Sequence[str], cwd: Path) -> None:
    proc = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{Path(argv[0]).name} failed (status {proc.returncode}):\n{proc.stderr}")


def _cache_key(tools: Iterable[str], parts: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for part in [*(tool_version(t).encode() for t in tools), *parts]:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()[:32]


def _publish(data: bytes, dest: Path) -> None:
    """Write ``dest`` atomically (parallel test runs may build the same file)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, dest)


@functools.cache
def assemble(source: str) -> bytes:
    """Machine code (little-endian) of the ``.text`` of an assembly snippet placed at address 0.

    Branches and ``adr`` between labels of the snippet are resolved by the assembler; a
    reference that would need a relocation (an undefined symbol, an absolute address) is an
    error, since the bytes are used without linking.
    """
    key = _cache_key(("as",), [b"assemble", source.encode()])
    cached = build_dir() / "asm" / f"{key}.bin"
    if cached.exists():
        return cached.read_bytes()
    with tempfile.TemporaryDirectory(prefix="armvisor-as-") as tmp:
        work = Path(tmp)
        (work / "snippet.s").write_text(source + "\n")
        _run([tool("as"), "-o", "snippet.o", "snippet.s"], work)
        _reject_relocations(work / "snippet.o")
        _run([tool("objcopy"), "-O", "binary", "-j", ".text", "snippet.o", "snippet.bin"], work)
        code = (work / "snippet.bin").read_bytes()
    _publish(code, cached)
    return code


def _reject_relocations(obj: Path) -> None:
    from elftools.elf.elffile import ELFFile

    with obj.open("rb") as f:
        relocated = [s.name for s in ELFFile(f).iter_sections() if s.name in (".rela.text", ".rel.text")]
    if relocated:
        raise BuildError("the snippet needs relocations (undefined symbol or absolute address)")


def _headers(dirs: Iterable[Path]) -> list[Path]:
    return sorted({h for d in dirs for h in d.glob("*.h")})


def build_elf(
    sources: Sequence[Path],
    out: Path,
    *,
    link_script: Path | None = None,
    cflags: Sequence[str] = (),
    include_dirs: Sequence[Path] = (),
) -> Path:
    """Compile and link C (``.c``) and assembly (``.S``/``.s``) sources into the ELF ``out``.

    Without ``link_script`` the image is linked with ``.text`` at :data:`RAM_BASE` and entry
    ``_start``. Headers in ``include_dirs`` and next to the sources are part of the cache key.
    """
    sources = [Path(s).resolve() for s in sources]
    include_dirs = [Path(d).resolve() for d in include_dirs]
    if link_script is None:
        link_flags = [f"-Wl,-Ttext=0x{RAM_BASE:x}", "-Wl,-e,_start"]
        script_text = b""
    else:
        link_script = Path(link_script).resolve()
        link_flags = ["-Wl,-T," + str(link_script)]
        script_text = link_script.read_bytes()
    argv = [
        tool("gcc"), *CFLAGS, *cflags, *(f"-I{d}" for d in include_dirs), *LDFLAGS, *link_flags,
    ]
    headers = _headers([*include_dirs, *(s.parent for s in sources)])
    parts = [" ".join(argv[1:]).encode(), script_text]
    for path in [*sources, *headers]:
        parts += [path.name.encode(), path.read_bytes()]
    cached = build_dir() / "elf" / f"{_cache_key(('gcc',), parts)}.elf"
    if not cached.exists():
        with tempfile.TemporaryDirectory(prefix="armvisor-cc-") as tmp:
            _run([*argv, *map(str, sources), "-o", "guest.elf"], Path(tmp))
            _publish((Path(tmp) / "guest.elf").read_bytes(), cached)
    out = Path(out)
    if not out.exists() or out.read_bytes() != cached.read_bytes():
        _publish(cached.read_bytes(), out)
    return out


def main() -> int:
    """Print the cross tools found and where builds are cached; status 1 if any is missing."""
    missing = 0
    for name in TOOLS:
        try:
            print(f"{CROSS_PREFIX + name:26} {tool(name)}  ({tool_version(name)})")
        except ToolchainMissing as err:
            print(err)
            missing += 1
    print(f"{'build cache':26} {build_dir()}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
