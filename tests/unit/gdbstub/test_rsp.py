"""RSP framing against the gdb manual (appendix E.1, E.10, E.11) and bytes gdb really sends."""

from __future__ import annotations

import socket

from armvisor.gdbstub.rsp import (
    BadPacket, Interrupt, Nack, Packet, PacketReader, RspChannel, escape_binary, expand_rle, frame,
    unescape_binary,
)


def events(data: bytes, limit: int = 0x4000) -> list:
    return list(PacketReader(limit).feed(data))


def test_frame_uses_the_modulo_256_checksum() -> None:
    assert frame(b"g") == b"$g#67"  # as in gdb's "set debug remote 1" log
    assert frame(b"qSupported") == b"$qSupported#37"
    assert frame(b"") == b"$#00"


def test_reader_splits_packets_acks_and_interrupts() -> None:
    got = events(b"+$g#67\x03-$m0,4#fd")
    assert got == [Packet(b"g"), Interrupt(), Nack(), Packet(b"m0,4")]


def test_reader_survives_arbitrary_chunking() -> None:
    reader = PacketReader()
    got = [e for byte in b"$vCont;c#a8" for e in reader.feed(bytes([byte]))]
    assert got == [Packet(b"vCont;c")]


def test_bad_checksum_and_non_hex_checksum() -> None:
    assert events(b"$g#68") == [BadPacket(b"g")]
    assert events(b"$g#zz") == [BadPacket(b"g")]


def test_oversized_packet_is_flagged_and_cut() -> None:
    payload = b"X" * 20
    (event,) = events(frame(payload), limit=8)
    assert event == Packet(b"X" * 8, oversized=True)


def test_run_length_encoding() -> None:
    # gdb manual E.1: "0* " means "0000" (the '*' repeats '0' 32 - 29 = 3 more times).
    assert expand_rle(b"0* ") == b"0000"
    assert expand_rle(b"*a") is None and expand_rle(b"0*") is None


def test_binary_escapes() -> None:
    raw = bytes([0x23, 0x24, 0x7D, 0x2A, 0x41])
    assert escape_binary(raw) == b"}\x03}\x04}]}\x0aA"
    assert unescape_binary(escape_binary(raw)) == raw
    assert unescape_binary(b"}") is None


def test_channel_acks_resends_on_nack_and_stops_acking_in_no_ack_mode() -> None:
    a, b = socket.socketpair()
    with a, b:
        chan = RspChannel(a)
        b.sendall(b"$g#67")
        assert chan.receive(timeout=1) == Packet(b"g")
        assert b.recv(10) == b"+"
        chan.send(b"OK")
        assert b.recv(10) == b"$OK#9a"
        b.sendall(b"-$g#68")  # a nack, then a corrupt packet
        assert chan.receive(timeout=0.2) is None
        assert b.recv(20) == b"$OK#9a-"
        chan.ack_mode = False
        b.sendall(b"$g#67")
        assert chan.receive(timeout=1) == Packet(b"g")
        b.setblocking(False)
        try:
            extra = b.recv(10)
        except BlockingIOError:
            extra = b""
        assert extra == b""
