"""An in-process gdb stub session over a socket pair, on the test harness machine."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from support.gdb_machine import MiniMachine

from armvisor import kvm as K
from armvisor.gdbstub.rsp import frame
from armvisor.gdbstub.server import GdbSession
from armvisor.toolchain import build_elf

LINK_LD = Path(__file__).resolve().parents[2] / "guests" / "link.ld"
GUEST = r"""
    .section .text.boot, "ax"
    .global _start
_start:
    mov     x0, #1
    add     x0, x0, #1
    movz    x1, #0x0900, lsl #16
    ldr     w2, [x1, #0x18]
    brk     #3
    movz    x0, #0x8400, lsl #16
    movk    x0, #0x0008
    hvc     #0
    .balign 8
data: .quad 0x1122334455667788
    .balign 2048
vectors:                            // VBAR_EL1, set by the harness: skip what trapped, return
    .fill   128, 4, 0xd503201f
    mrs     x9, elr_el1
    add     x9, x9, #4
    msr     elr_el1, x9
    eret
"""
ENTRY = 0x4000_0000
DATA = ENTRY + 32
VECTORS = ENTRY + 0x800
VBAR_EL1 = K.arm64_sys_reg(3, 0, 12, 0, 0)


@pytest.fixture(scope="session")
def guest_elf(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("gdbstub_unit")
    src = d / "unit.S"
    src.write_text(GUEST)
    return build_elf([src], d / "unit.elf", link_script=LINK_LD)


class Client:
    """The gdb side: sends packets, acknowledges replies, returns payloads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(10)
        self.buf = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> bytes:
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                payload = self.buf[start + 1:end]
                self.buf = self.buf[end + 3:]
                self.sock.sendall(b"+")
                return payload
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("stub closed the connection")
            self.buf += data

    def __call__(self, packet: bytes | str) -> bytes:
        self.send_raw(frame(packet.encode() if isinstance(packet, str) else packet))
        return self.reply()


class Harness:
    def __init__(self, elf: Path, cpus: int = 1) -> None:
        self.machine = MiniMachine(str(elf), cpus, output=open("/dev/null", "wb"))
        self.machine.vcpus[0].set_one_reg(VBAR_EL1, VECTORS)
        stub_sock, gdb_sock = socket.socketpair()
        self.stub_sock = stub_sock
        self.session = GdbSession(self.machine, stub_sock)
        self.result: list = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.session.serve()), daemon=True)
        self.thread.start()
        self.gdb = Client(gdb_sock)

    def close(self) -> None:
        self.gdb.sock.close()
        self.thread.join(timeout=10)
        self.stub_sock.close()
        self.machine.output.close()


@pytest.fixture
def stub(guest_elf):
    h = Harness(guest_elf)
    yield h
    h.close()
