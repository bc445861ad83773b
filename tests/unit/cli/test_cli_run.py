"""``armvisor run`` option parsing: QEMU's spellings and syntaxes (``-m`` sizes, ``-smp``,
``-M virt,gic-version=``, ``-gdb tcp::PORT``, ``-serial``) and one-line usage errors."""

from __future__ import annotations

import argparse

import pytest

from armvisor.cli.main import build_parser
from armvisor.cli.run import parse_gdb, parse_machine, parse_serial, parse_size, parse_smp


@pytest.mark.parametrize(("text", "size"), [("64M", 64 << 20), ("1G", 1 << 30), ("128", 128 << 20),
                                             ("8k", 8 << 10), ("1.5G", 3 << 29)])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["12Q", "0", "1000B", "M", "-1G"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(text)


@pytest.mark.parametrize(("parse", "text", "value"), [
    (parse_smp, "2", 2), (parse_smp, "cpus=4", 4),
    (parse_machine, "virt", 2), (parse_machine, "virt,gic-version=3", 3), (parse_machine, "virt,gic-version=max", 3),
    (parse_gdb, "tcp::1234", ("127.0.0.1", 1234)), (parse_gdb, "tcp:0.0.0.0:5555", ("0.0.0.0", 5555)),
    (parse_serial, "file:/tmp/x", "file:/tmp/x"), (parse_serial, "null", "null"),
])
def test_qemu_syntax(parse, text: str, value) -> None:
    assert parse(text) == value


@pytest.mark.parametrize(("parse", "text"), [
    (parse_smp, "0"), (parse_smp, "two"), (parse_machine, "vexpress-a9"), (parse_machine, "virt,gic-version=4"),
    (parse_machine, "virt,secure=on"), (parse_gdb, "tcp:1234"), (parse_gdb, "unix:/tmp/s"),
    (parse_gdb, "tcp::99999"), (parse_serial, "udp::4444"), (parse_serial, "tcp:4444"), (parse_serial, "tcp::4444,telnet"),
    (parse_serial, "file:"),
])
def test_qemu_syntax_rejected(parse, text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse(text)


def test_defaults_match_qemu_virt() -> None:
    args = build_parser().parse_args(["run", "guest.elf"])
    assert (args.m, args.smp, args.gic_version, args.serial) == (128 << 20, 1, 2, "stdio")


def test_usage_error_status_is_1(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["run", "-smp", "zero", "guest.elf"])
    assert done.value.code == 1
    assert capsys.readouterr().err.count("\n") == 1
