"""Property: whatever bytes gdb (or anything else) sends, the stub neither raises nor hangs;
it answers a well-formed packet afterwards, or has ended the session the way the protocol
says (detach, kill, the guest finishing)."""

from __future__ import annotations

import socket
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.gdb_machine import MiniMachine

from armvisor.gdbstub import commands
from armvisor.gdbstub.rsp import frame
from armvisor.gdbstub.server import Detached, Finished, GdbSession
from armvisor.toolchain import build_elf
from unit.gdbstub.conftest import LINK_LD

SPIN = '    .section .text.boot, "ax"\n    .global _start\n_start:\n    add x0, x0, #1\n    b _start\n'
NAMES = [c.name.encode() for c in commands.COMMANDS] + [b"vFile:open:", b"qXfer:memory-map:read::0,1"]


@pytest.fixture(scope="module")
def spin_elf(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    (d / "spin.S").write_text(SPIN)
    return str(build_elf([d / "spin.S"], d / "spin.elf", link_script=LINK_LD))


payloads = st.one_of(
    st.binary(max_size=64),
    st.tuples(st.sampled_from(NAMES), st.binary(max_size=40)).map(lambda t: t[0] + t[1]),
    st.tuples(st.sampled_from(NAMES), st.from_regex(rb"\A[0-9a-fA-F,:;=\-]{0,30}\Z")).map(lambda t: t[0] + t[1]),
)
chunks = st.lists(st.one_of(payloads.map(frame), st.binary(max_size=32),
                            payloads.map(lambda p: b"$" + p + b"#00")), max_size=6)


def exercise(elf: str, data: list[bytes]) -> None:
    with open("/dev/null", "wb") as sink:
        machine = MiniMachine(elf, 1, output=sink)
        stub_sock, gdb_sock = socket.socketpair()
        result: list = []
        session = GdbSession(machine, stub_sock)

        def serve() -> None:
            try:
                result.append(session.serve())
            except BaseException as err:  # the property under test: this never happens
                result.append(err)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            for chunk in data:
                gdb_sock.sendall(chunk)
            gdb_sock.sendall(b"\x03" + frame(b"qC"))  # interrupt whatever runs, then ask
            gdb_sock.settimeout(0.05)
            received = b""
            for _ in range(400):
                if b"$QC1#" in received or not thread.is_alive():
                    break
                try:
                    more = gdb_sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not more:
                    break
                received += more
                if b"$" in more:
                    gdb_sock.sendall(b"+")
            if thread.is_alive():
                assert b"$QC1#" in received, received[-200:]
            else:
                assert len(result) == 1 and isinstance(result[0], (Detached, Finished)), result
        finally:
            gdb_sock.close()
            thread.join(timeout=20)
            stub_sock.close()
        assert not thread.is_alive()
        assert all(isinstance(r, (Detached, Finished)) for r in result), result


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=chunks)
def test_random_packets_never_break_the_stub(spin_elf, data) -> None:
    exercise(spin_elf, data)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=chunks)
def test_random_packets_never_break_the_stub_long(spin_elf, data) -> None:
    exercise(spin_elf, data)
