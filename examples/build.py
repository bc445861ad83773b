#!/usr/bin/env python3
"""Build a bundled example guest and print the path of its ELF.

    python3 examples/build.py hello      # -> examples/hello/build/hello.elf

An example is a folder of C (``.c``) and assembly (``.S``) sources with an entry symbol
``_start``; an optional ``link.ld`` in it replaces the default layout (text at 0x4000_0000).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from armvisor.toolchain import BuildError, ToolchainMissing, build_elf

EXAMPLES = Path(__file__).resolve().parent


def build_example(name: str) -> Path:
    folder = EXAMPLES / name
    sources = sorted(p for p in folder.iterdir() if p.suffix in (".c", ".S"))
    if not sources:
        raise BuildError(f"no example named {name!r} (no .c/.S sources in {folder})")
    script = folder / "link.ld"
    return build_elf(sources, folder / "build" / f"{name}.elf",
                     link_script=script if script.exists() else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="example folder under examples/")
    args = parser.parse_args()
    try:
        print(build_example(args.name))
    except (BuildError, ToolchainMissing) as err:
        print(f"build.py: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
