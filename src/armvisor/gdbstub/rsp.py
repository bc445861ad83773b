"""GDB remote serial protocol framing (gdb manual, appendix E.1 "Overview", E.10 "Interrupts",
E.11 "Packet Acknowledgment").

A packet is ``$payload#cs`` with ``cs`` the modulo-256 sum of the payload bytes as sent, in two
hex digits. The receiver answers ``+`` (good) or ``-`` (bad checksum: resend) until
``QStartNoAckMode`` switches acknowledgments off. Outside a packet a ``0x03`` byte is the
interrupt request (Ctrl-C). Payloads may be run-length encoded (``X*n`` repeats ``X``
``ord(n) - 29`` more times); binary data escapes ``$ # } *`` as ``}`` followed by the byte XOR
0x20.

:class:`PacketReader` is a pure byte-stream parser (fed whatever arrived, it yields events);
:class:`RspChannel` puts it on a socket, like QEMU's ``gdb_read_byte``/``put_packet``.
"""

from __future__ import annotations

import select
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Union

PACKET_SIZE = 0x4000
"""The largest packet accepted or sent (payload bytes), advertised as ``PacketSize``."""

INTERRUPT = 0x03
ESCAPE = 0x7D  # '}'
RLE = 0x2A  # '*'
ESCAPED_BYTES = frozenset(b"$#}*")


@dataclass(frozen=True)
class Packet:
    """A packet whose checksum held. ``oversized``: longer than PACKET_SIZE (payload cut)."""

    payload: bytes
    oversized: bool = False


@dataclass(frozen=True)
class Interrupt:
    """The 0x03 byte outside a packet."""


@dataclass(frozen=True)
class Nack:
    """``-``: the peer wants the last packet again."""


@dataclass(frozen=True)
class BadPacket:
    """A packet that failed its checksum or had no hex checksum."""

    payload: bytes


Event = Union[Packet, Interrupt, Nack, BadPacket]


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def frame(payload: bytes) -> bytes:
    """``$payload#cs``. The payload must already be escaped if it is binary."""
    return b"$" + payload + b"#%02x" % checksum(payload)


def escape_binary(data: bytes) -> bytes:
    """Escape ``$ # } *`` in binary data (qXfer replies)."""
    out = bytearray()
    for byte in data:
        if byte in ESCAPED_BYTES:
            out += bytes((ESCAPE, byte ^ 0x20))
        else:
            out.append(byte)
    return bytes(out)


def unescape_binary(data: bytes) -> bytes | None:
    """Undo :func:`escape_binary` (X packets); None when the data ends inside an escape."""
    out = bytearray()
    it = iter(data)
    for byte in it:
        if byte == ESCAPE:
            nxt = next(it, None)
            if nxt is None:
                return None
            out.append(nxt ^ 0x20)
        else:
            out.append(byte)
    return bytes(out)


def expand_rle(data: bytes) -> bytes | None:
    """Expand run-length encoding; None for a ``*`` with nothing to repeat or a bad count."""
    out = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == RLE:
            if not out or i + 1 >= len(data) or not 29 + 3 <= data[i + 1] <= 126:
                return None
            out += bytes((out[-1],)) * (data[i + 1] - 29)
            i += 2
            continue
        out.append(byte)
        i += 1
    return bytes(out)


class PacketReader:
    """The receive state machine: idle -> payload -> checksum digit 1 -> digit 2."""

    def __init__(self, limit: int = PACKET_SIZE) -> None:
        self.limit = limit
        self._state = "idle"
        self._payload = bytearray()
        self._sum = 0
        self._length = 0
        self._digits = bytearray()

    def feed(self, data: bytes) -> Iterator[Event]:
        for byte in data:
            event = self._byte(byte)
            if event is not None:
                yield event

    def _byte(self, byte: int) -> Event | None:
        state = self._state
        if state == "idle":
            if byte == ord("$"):
                self._start()
            elif byte == INTERRUPT:
                return Interrupt()
            elif byte == ord("-"):
                return Nack()
            return None  # '+' and line noise between packets are ignored
        if state == "payload":
            if byte == ord("#"):
                self._state = "checksum"
                self._digits.clear()
            elif byte == ord("$"):  # a new packet restarts (gdb resent after a lost byte)
                self._start()
            else:
                self._sum += byte
                self._length += 1
                if len(self._payload) < self.limit:
                    self._payload.append(byte)
            return None
        self._digits.append(byte)
        if len(self._digits) < 2:
            return None
        self._state = "idle"
        payload = bytes(self._payload)
        try:
            good = int(self._digits.decode("ascii"), 16) == self._sum & 0xFF
        except (UnicodeDecodeError, ValueError):
            good = False
        if not good:
            return BadPacket(payload)
        return Packet(payload, oversized=self._length > self.limit)

    def _start(self) -> None:
        self._state = "payload"
        self._payload.clear()
        self._sum = 0
        self._length = 0


class ConnectionClosed(Exception):
    """The peer closed the connection (or it broke)."""


class RspChannel:
    """One gdb connection: acknowledgments, resending on ``-``, Ctrl-C while running."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = PacketReader()
        self.ack_mode = True
        self.last_sent = b""
        self.pending: list[Event] = []

    def send(self, payload: bytes) -> None:
        """Send one packet (not waiting for its ``+``: a ``-`` later makes us resend it)."""
        self.last_sent = frame(payload)
        self._write(self.last_sent)

    def _write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as err:
            raise ConnectionClosed(str(err)) from None

    def receive(self, timeout: float | None = None) -> Packet | Interrupt | None:
        """The next packet or interrupt, acknowledging packets; None if ``timeout`` (seconds, 0 =
        poll) passes first. Bad packets are answered ``-`` (ignored in no-ack mode)."""
        while True:
            while self.pending:
                event = self.pending.pop(0)
                if isinstance(event, Nack):
                    if self.last_sent:
                        self._write(self.last_sent)
                elif isinstance(event, BadPacket):
                    if self.ack_mode:
                        self._write(b"-")
                    else:
                        print(f"armvisor gdbstub: bad checksum, packet dropped: {event.payload[:40]!r}",
                              file=sys.stderr)
                else:
                    if isinstance(event, Packet) and self.ack_mode:
                        self._write(b"+")
                    return event
            data = self._read(timeout)
            if data is None:
                return None
            self.pending.extend(self.reader.feed(data))

    def _read(self, timeout: float | None) -> bytes | None:
        """The next bytes from gdb, waiting at most ``timeout`` seconds (the socket stays in
        blocking mode: a step costs one ``recv`` per packet, not mode switches around it)."""
        try:
            if timeout is not None and not select.select([self.sock], [], [], timeout)[0]:
                return None
            data = self.sock.recv(65536)
        except OSError as err:
            raise ConnectionClosed(str(err)) from None
        if not data:
            raise ConnectionClosed("gdb closed the connection")
        return data
