"""Malformed kernels never crash the loader: a damaged ELF (random bytes changed, truncated,
or an ELF header on garbage) either loads or is refused with one LoadError, never another
exception (DEVELOPERS.md: bad input gets a clear error)."""

from __future__ import annotations

from pathlib import Path

import pytest
from guests import build_guest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from armvisor.vmm.loaders import LoadError, load_kernel
from armvisor.vmm.ram import GuestRam

RAM_BASE = 0x4000_0000


@pytest.fixture(scope="module")
def elf_bytes() -> bytes:
    return build_guest("hello").read_bytes()


def _load(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "kernel"
    path.write_bytes(data)
    try:
        load_kernel(path, GuestRam(RAM_BASE, bytearray(1 << 20)))
    except LoadError as err:
        assert "\n" not in str(err) and str(err)


@settings(max_examples=1500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
# Most edits hit the ELF and program headers (the first 512 bytes), where parsing happens.
@given(edits=st.lists(st.tuples(st.one_of(st.integers(0, 511), st.integers(0, 4095)), st.integers(0, 255)),
                      min_size=1, max_size=12),
       cut=st.one_of(st.none(), st.integers(0, 4096)))
def test_damaged_elf_loads_or_is_refused(tmp_path: Path, elf_bytes: bytes, edits, cut) -> None:
    data = bytearray(elf_bytes)
    for offset, value in edits:
        if offset < len(data):
            data[offset] = value
    _load(tmp_path, bytes(data[:cut] if cut is not None else data))


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tail=st.binary(max_size=512))
def test_elf_magic_on_garbage_is_refused(tmp_path: Path, tail: bytes) -> None:
    _load(tmp_path, b"\x7fELF" + tail)
