"""``armvisor SUBCOMMAND ...``: argument parsing and dispatch.

Each subcommand is a module with ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``main(args) -> int`` (the exit status); adding a command or an option touches that module only.
Usage errors exit with status 1 (argparse's default, 2, is the guest-reset status of ``run``).
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from typing import NoReturn

from armvisor import __version__
from armvisor.cli import run

COMMANDS = (run,)
USAGE_ERROR = 1
# Collector thresholds for a VM process. Every decoded instruction is a closure (with its cells)
# that lives as long as the decode cache, and the cache grows to hundreds of thousands of
# objects: with CPython's default thresholds, collections that rescan it cost several times
# the execution of cold code (measured: 11 us per first-executed instruction, 3.3 us with
# these values). The objects have no cycles to free, so collecting rarely loses nothing.
GC_THRESHOLDS = (100_000, 50, 1000)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status :data:`USAGE_ERROR`."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="armvisor", description="A pure-Python AArch64 virtual machine.",
                            allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"armvisor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(command.NAME, help=command.HELP, description=command.HELP,
                                  allow_abbrev=False)
        command.add_arguments(sub)
        sub.set_defaults(handler=command.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``armvisor`` console script."""
    args = build_parser().parse_args(argv)
    if hasattr(gc, "set_threshold"):  # CPython's collector; PyPy's has no thresholds
        gc.set_threshold(*GC_THRESHOLDS)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
