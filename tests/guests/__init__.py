"""Guest programs for the tests, and the C/assembly runtime they share.

Runtime: ``crt0.S`` (entry, stack, exception vectors that report and reset), ``psci.S``,
``uart.c`` (PL011 output), ``lib.c`` and ``link.ld`` (image at 0x4000_0000, as on QEMU's
``virt`` board). :func:`build_guest` compiles ``<name>.c`` or ``<name>.S`` with the runtime
through :mod:`armvisor.toolchain`; builds are cached.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from armvisor.toolchain import build_elf

GUESTS_DIR = Path(__file__).resolve().parent
RUNTIME = [GUESTS_DIR / name for name in ("crt0.S", "psci.S", "uart.c", "lib.c")]
LINK_SCRIPT = GUESTS_DIR / "link.ld"
BUILD_DIR = GUESTS_DIR / "build"


def c_string(text: str) -> str:
    """``text`` as a C string literal (for a define)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_guest(name: str, defines: Mapping[str, str | int] | None = None) -> Path:
    """Build the guest ``name`` with optional defines (``-DNAME=value``); returns the ELF."""
    source = next(p for p in (GUESTS_DIR / f"{name}.c", GUESTS_DIR / f"{name}.S") if p.exists())
    flags = [f"-D{k}={v}" for k, v in (defines or {}).items()]
    suffix = "-" + hashlib.sha256("\0".join(flags).encode()).hexdigest()[:8] if flags else ""
    return build_elf([*RUNTIME, source], BUILD_DIR / f"{name}{suffix}.elf",
                     link_script=LINK_SCRIPT, cflags=flags, include_dirs=[GUESTS_DIR])
