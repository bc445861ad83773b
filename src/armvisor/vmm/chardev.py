"""Character backends for the UART, spelled like QEMU's ``-serial``/``-chardev`` (QEMU
docs "Character device options"): ``stdio``, ``null``, ``file:PATH``, and TCP either as a
client (``tcp:HOST:PORT``) or as a server (``tcp:HOST:PORT,server[=on][,wait=off|nowait]``).

A backend is an output stream for what the guest transmits and, where the backend can deliver
input, a readable stream whose file descriptor the machine polls for the UART's receiver.
A TCP peer that goes away only loses the guest's output from then on; the guest runs on.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import BinaryIO


class ChardevError(ValueError):
    """A backend specification that is malformed or cannot be opened."""


class SocketOutput:
    """A write-only stream over a connected socket that drops output once the peer is gone."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.closed_by_peer = False

    def write(self, data: bytes) -> int:
        if not self.closed_by_peer:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed_by_peer = True
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered."""


def _tcp_options(spec: str) -> tuple[str, int, bool, bool]:
    """(host, port, server, wait) of ``tcp:HOST:PORT[,server[=on|off]][,wait=on|off|nowait]``."""
    address, *options = spec.removeprefix("tcp:").split(",")
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ChardevError(f"-serial {spec}: expected tcp:HOST:PORT")
    server, wait = False, True
    for option in options:
        name, _, value = option.partition("=")
        flag = value in ("", "on")
        if value not in ("", "on", "off"):
            raise ChardevError(f"-serial {spec}: bad value in {option!r}")
        if name == "server":
            server = flag
        elif name == "wait":
            wait = flag
        elif name == "nowait" and not value:
            wait = False
        else:
            raise ChardevError(f"-serial {spec}: unknown option {option!r}")
    return host or "127.0.0.1", int(port_text), server, wait


def _open_tcp(spec: str, stack: ExitStack, announce: Callable[[str], None]) -> tuple[BinaryIO, BinaryIO]:
    host, port, server, wait = _tcp_options(spec)
    try:
        if server:
            listener = stack.enter_context(socket.create_server((host, port), reuse_port=False))
            if not wait:
                raise ChardevError(f"-serial {spec}: wait=off is not supported (the UART needs a peer "
                                   "from the start); use wait=on")
            announce(f"waiting for a connection on tcp:{host}:{port} for the serial port")
            conn, _ = listener.accept()
        else:
            conn = socket.create_connection((host, port), timeout=10)
            conn.settimeout(None)
    except OSError as err:
        raise ChardevError(f"-serial {spec}: {err.strerror or err}") from None
    stack.enter_context(conn)
    reader = stack.enter_context(conn.makefile("rb", buffering=0))
    return SocketOutput(conn), reader  # type: ignore[return-value]


def _backend(spec: str) -> str:
    """The backend ``spec`` names: ``stdio``, ``null``, ``file`` or ``tcp``; ChardevError if none."""
    if spec in ("stdio", "null"):
        return spec
    if spec.startswith("file:") and len(spec) > 5:
        return "file"
    if spec.startswith("tcp:"):
        return "tcp"
    raise ChardevError(f"unsupported -serial {spec!r} (armvisor has stdio, null, file:PATH, tcp:HOST:PORT[,server])")


def open_chardev(spec: str, stack: ExitStack,
                 announce: Callable[[str], None] = lambda message: None) -> tuple[BinaryIO, BinaryIO | None]:
    """Open the backend named by ``spec``: (output stream, input stream or None). Resources are
    closed with ``stack``; errors raise :class:`ChardevError` with a one-line message."""
    backend = _backend(spec)
    if backend == "stdio":
        return sys.stdout.buffer, sys.stdin.buffer if sys.stdin is not None else None
    if backend == "tcp":
        return _open_tcp(spec, stack, announce)
    path = os.devnull if backend == "null" else spec.removeprefix("file:")
    try:
        return stack.enter_context(open(path, "wb")), None
    except OSError as err:
        raise ChardevError(f"-serial {spec}: {err.strerror}") from None


def validate(spec: str) -> str:
    """Check the syntax of a specification without opening anything (for argument parsing)."""
    if _backend(spec) == "tcp":
        _tcp_options(spec)
    return spec
