"""The decode index of every table gives the answer of the declarative pattern list: the first
entry, in table order, whose pattern the word matches (Arm ARM C4.1's tables as written)."""

from __future__ import annotations

import importlib
import pkgutil
import random

import pytest

import armvisor.cpu.isa
from armvisor.cpu.decoder import DecodeTable

WORDS_PER_TABLE = 4000


def all_tables() -> list[DecodeTable]:
    """Every DecodeTable module-level ``TABLE`` of the ISA package."""
    tables = []
    for info in pkgutil.iter_modules(armvisor.cpu.isa.__path__):
        module = importlib.import_module(f"armvisor.cpu.isa.{info.name}")
        table = getattr(module, "TABLE", None)
        if isinstance(table, DecodeTable):
            tables.append(table)
    return tables


def first_match(table: DecodeTable, insn: int) -> tuple[str, object] | None:
    """The specification: a linear scan of the patterns."""
    for mask, value, name, builder in table.entries:
        if insn & mask == value:
            return name, builder
    return None


def test_every_isa_table_is_walked() -> None:
    names = {table.name for table in all_tables()}
    assert {"branch", "dp_imm", "dp_reg", "fp", "ldst", "system", "ldst_single", "ldst_pair",
            "ldst_exclusive", "ldst_atomic", "ldst_simd"} <= names


@pytest.mark.parametrize("table", all_tables(), ids=lambda t: t.name)
def test_index_agrees_with_linear_scan(table: DecodeTable) -> None:
    rng = random.Random(table.name)
    words = [rng.getrandbits(32) for _ in range(WORDS_PER_TABLE)]
    # Words inside each pattern (its fixed bits, random free bits), so every entry and the
    # entries that shadow each other are exercised, not only unallocated space.
    for mask, value, _name, _builder in table.entries:
        words += [value | (rng.getrandbits(32) & ~mask) for _ in range(WORDS_PER_TABLE // 8)]
    assert any(first_match(table, w) is not None for w in words)
    for word in words:
        assert table.lookup(word) == first_match(table, word), f"{table.name}: 0x{word:08x}"


def test_index_follows_later_registrations() -> None:
    table = DecodeTable("t")

    @table.add("1xxx xxxx xxxx xxxx xxxx xxxx xxxx xxxx")
    def high(cpu, insn, pc):  # noqa: ANN001, ANN202
        raise AssertionError

    assert table.lookup(0x8000_0000) == ("high", high)
    assert table.lookup(0x0000_0001) is None

    @table.add("xxxx xxxx xxxx xxxx xxxx xxxx xxxx xxx1")
    def odd(cpu, insn, pc):  # noqa: ANN001, ANN202
        raise AssertionError

    other = DecodeTable("o")
    other.include(table)
    for t in (table, other):
        assert t.lookup(0x8000_0001) == ("high", high)  # table order: the first match wins
        assert t.lookup(0x0000_0001) == ("odd", odd)
        assert t.lookup(0x0000_0002) is None
