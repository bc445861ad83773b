"""`-serial tcp:...`: the UART on a TCP socket, as QEMU's socket chardev (server and client)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from guests import build_guest

ARMVISOR = [sys.executable, "-m", "armvisor.cli.main", "run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def hello() -> Path:
    return build_guest("hello")


def _connect(port: int, deadline: float) -> socket.socket:
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_serial_tcp_server_waits_for_a_client(hello: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([*ARMVISOR, "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on", str(hello)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with _connect(port, time.monotonic() + 30) as conn:
            received = b""
            while chunk := conn.recv(4096):
                received += chunk
        assert proc.wait(timeout=30) == 0
        assert received == b"Hello from armvisor!\n"
        assert proc.stdout is not None and proc.stdout.read() == b""  # nothing on stdout
    finally:
        proc.kill()
        proc.wait()


def test_serial_tcp_client_connects_out(hello: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        proc = subprocess.Popen([*ARMVISOR, "-serial", f"tcp:127.0.0.1:{port}", str(hello)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            server.settimeout(30)
            conn, _ = server.accept()
            with conn:
                received = b""
                while chunk := conn.recv(4096):
                    received += chunk
            assert proc.wait(timeout=30) == 0
            assert received == b"Hello from armvisor!\n"
        finally:
            proc.kill()
            proc.wait()


def test_serial_tcp_bad_spec_is_one_line() -> None:
    result = subprocess.run([*ARMVISOR, "-serial", "tcp:nowhere", "x.elf"], capture_output=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.decode().count("\n") == 1 and b"Traceback" not in result.stderr
