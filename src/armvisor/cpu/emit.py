"""Instructions as Python source: one definition of an instruction's semantics for every tier.

An *emitter* turns an instruction word at an address into an :class:`Emitted`: Python
statements (``code``) and the expression of the next PC (``next``) written over a small
environment, with ``{name}`` placeholders for the decode-time constants in ``consts``. The
same text becomes

* a tier-0 op (:func:`tier0_op`): the placeholders become closure variables of a factory that
  is compiled once per *shape* (code and next text) and called per instruction, so cold code
  pays no ``compile()``;
* part of a tier-1 block (:mod:`armvisor.cpu.translate`): the placeholders are replaced by the
  constants' values and a run of instructions becomes one generated function.

Emitters must keep ``code`` and ``next`` constant per shape (values go in ``consts``, never into
the text), and must do every access that can fault before their first write of state, so that an
instruction either completes or leaves the state as it was (precise exceptions, and what lets a
translated block hand a faulting instruction back to tier 0 unchanged).

The environment (names the code may use):

``s``
    the :class:`~armvisor.cpu.state.CpuState` (``s.sp``, ``s.nzcv``, ...);
``x``
    its register list (``x[31]`` reads 0, ``x[32]`` absorbs writes; see ``cpu.state``);
``v = LOAD<n>(address)``
    (a statement of its own) loads ``n`` bytes (1, 2, 4 or 8), zero-extended;
``STORE<n>(a, value)``
    (a statement of its own; ``a`` a plain name) stores the low ``n`` bytes of ``value``;
``CHECK_STORE<n>(a)``
    (a statement of its own; ``a`` a plain name) raises the fault a store of ``n`` bytes at
    ``a`` would take, without storing (for multi-access instructions that must fault before
    their first store);
``SP_ALIGN_CHECK``
    (a line of its own, first in the code of a load or store whose base is SP) takes the SP
    alignment fault when it applies (Arm ARM D1.8.2).

Temporaries of the text are named with a trailing ``_`` (``a_``, ``v_``, ``r_``); the
expansions and the translator use ``off_``, ``vector_``, ``next_``, ``n_``, ``sp_``, ``nzcv_``
and ``r<N>_``, which the text must leave alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

from armvisor.cpu.decoder import Op
from armvisor.cpu.sp_alignment import check_sp_alignment

if TYPE_CHECKING:
    from armvisor.cpu.access import MemoryAccess
    from armvisor.cpu.core import Cpu

NEXT_SEQUENTIAL = "{npc}"

ACCESS_SIZES = (1, 2, 4, 8)

LOAD_LINE = re.compile(r"^(\s*)(\w+) = LOAD([1248])\((.*)\)$")
STORE_LINE = re.compile(r"^(\s*)STORE([1248])\((\w+), (.*)\)$")
CHECK_STORE_LINE = re.compile(r"^(\s*)CHECK_STORE([1248])\((\w+)\)$")
SP_ALIGN_LINE = re.compile(r"^(\s*)SP_ALIGN_CHECK$")


class Emitted(NamedTuple):
    """One instruction as source; see the module docstring. (A tuple: cold code creates one
    per instruction decoded.)"""

    code: str
    consts: dict[str, int]
    next: str = NEXT_SEQUENTIAL
    # Data-abort syndrome with ISV=1 (Arm ARM ESR_ELx ISS) of a single-register access.
    dabt_iss: int = 0
    # Addresses known at decode time where execution continues non-sequentially (branch
    # targets, the return point of a call): where translated blocks are worth starting.
    heads: tuple[int, ...] = ()

    @property
    def falls_through(self) -> bool:
        """The next instruction is always the one at PC + 4."""
        return self.next == NEXT_SEQUENTIAL


def emitted(pc: int, code: str, next: str = NEXT_SEQUENTIAL, *, dabt_iss: int = 0,
            heads: tuple[int, ...] = (), **consts: int) -> Emitted:
    """An :class:`Emitted` for the instruction at ``pc``; ``{pc}`` and ``{npc}`` (PC + 4) are
    always available to the text (they are the last constants)."""
    consts["pc"] = pc
    consts["npc"] = pc + 4
    return Emitted(code, consts, next, dabt_iss, heads)


Emitter = Callable[[int, int], "Emitted | None"]


# Decoding a word once is what costs at tier 0 (the emitter, then the factory lookup): for
# instructions whose constants do not depend on their address, the factory and constants are
# kept per instruction word (here, for every PE; bound to a PE's environment in
# ``Cpu.word_ops``), and the op for the same word elsewhere is one call.
WORD_CACHE_LIMIT = 1 << 16
_by_word: dict[int, tuple[Callable[..., Op], tuple[int, ...], int]] = {}


def emitter(emit: Emitter | None = None, *, pc_relative: bool = False):
    """Register an emitter in a :class:`~armvisor.cpu.decoder.DecodeTable` as a builder: its
    tier-0 op, or UNDEFINED where it returns None. The emitter stays reachable as
    ``builder.emitter``. ``@emitter(pc_relative=True)`` marks emitters whose constants other
    than ``pc``/``npc`` depend on the address (PC-relative addresses, branch targets); the
    others' ops are built per instruction word once (a test checks the marking)."""
    if emit is None:
        return lambda fn: emitter(fn, pc_relative=pc_relative)

    def build(cpu: "Cpu", insn: int, pc: int) -> Op:
        known = _by_word.get(insn)
        if known is None:
            em = emit(insn, pc)
            if em is None:
                return cpu.undefined_op(insn, pc)
            if pc_relative or em.heads:
                return tier0_op(em, cpu.tier0_env)
            if len(_by_word) >= WORD_CACHE_LIMIT:
                _by_word.clear()
            consts = em.consts
            known = _by_word[insn] = (tier0_factory(em.code, em.next, tuple(consts)),
                                      tuple(consts.values())[:-2], em.dabt_iss)
        factory, values, dabt_iss = known
        return cpu.word_op(insn, partial(factory, *cpu.tier0_env, *values), dabt_iss, pc)

    build.emitter = emit  # type: ignore[attr-defined]
    build.pc_relative = pc_relative  # type: ignore[attr-defined]
    build.__name__, build.__doc__ = emit.__name__, emit.__doc__
    return build


def expand(code: str, load: Callable[[str, str, int, str], str],
           store: Callable[[str, int, str, str], str], check_store: Callable[[str, int, str], str],
           sp_align: Callable[[str], str]) -> str:
    """Replace the environment's statement macros line by line: ``load(indent, name, size,
    address)``, ``store(indent, size, address_name, value)``, ``check_store(indent, size,
    address_name)``, ``sp_align(indent)``."""
    out = []
    for line in code.splitlines():
        if m := LOAD_LINE.match(line):
            out.append(load(m[1], m[2], int(m[3]), m[4]))
        elif m := STORE_LINE.match(line):
            out.append(store(m[1], int(m[2]), m[3], m[4]))
        elif m := CHECK_STORE_LINE.match(line):
            out.append(check_store(m[1], int(m[2]), m[3]))
        elif m := SP_ALIGN_LINE.match(line):
            out.append(sp_align(m[1]))
        else:
            out.append(line)
    return "\n".join(out)


# -- tier 0 -------------------------------------------------------------------------------------

# Parameters of every tier-0 factory before the constants: the environment.
TIER0_ENV = ("x", "rd1", "rd2", "rd4", "rd8", "wr1", "wr2", "wr4", "wr8", "check_access",
             "check_sp_alignment")


def tier0_env(x: list[int], access: "MemoryAccess") -> tuple:
    """The environment values, in :data:`TIER0_ENV` order, for a PE's ops."""
    return (x, *(access.read[n] for n in ACCESS_SIZES), *(access.write[n] for n in ACCESS_SIZES),
            access.check_access, check_sp_alignment)


def _tier0_load(indent: str, name: str, size: int, address: str) -> str:
    return f"{indent}{name} = rd{size}({address})"


def _tier0_store(indent: str, size: int, address: str, value: str) -> str:
    return f"{indent}wr{size}({address}, {value})"


def _tier0_check_store(indent: str, size: int, address: str) -> str:
    return f"{indent}check_access({address}, {size}, True)"


def _tier0_sp_align(indent: str) -> str:
    return (f"{indent}if s.sp & 15:\n"
            f"{indent}    vector_ = check_sp_alignment(s, {{pc}})\n"
            f"{indent}    if vector_ is not None:\n"
            f"{indent}        return vector_")


_factories: dict[tuple[str, str, tuple[str, ...]], Callable[..., Op]] = {}


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def tier0_factory(code: str, next: str, names: tuple[str, ...]) -> Callable[..., Op]:
    """The compiled factory of one shape: called with the environment and then the constants
    (in ``names`` order), it returns the op. The op binds what its text uses as default
    arguments (fast locals, and one tuple for the collector to track instead of a cell each)."""
    key = (code, next, names)
    factory = _factories.get(key)
    if factory is None:
        params = {name: f"k_{name}" for name in names}
        body = expand(code, _tier0_load, _tier0_store, _tier0_check_store, _tier0_sp_align).format_map(params)
        ret = next.format_map(params)
        used = [name for name in (*TIER0_ENV, *params.values()) if re.search(rf"\b{name}\b", body + "\n" + ret)]
        source = (f"def factory_({', '.join(TIER0_ENV + tuple(params.values()))}):\n"
                  f"    def op(s, {', '.join(f'{name}={name}' for name in used)}):\n"
                  f"{_indent(body, ' ' * 8)}\n"
                  f"        return {ret}\n"
                  f"    return op\n")
        namespace: dict = {}
        exec(compile(source, f"<tier0 {len(_factories)}>", "exec"), namespace)
        factory = _factories[key] = namespace["factory_"]
    return factory


def tier0_op(em: Emitted, env: tuple) -> Op:
    """The tier-0 op of one emitted instruction, with ``op.heads`` and ``op.dabt_iss`` where it
    has them (the translator emits the instruction again when it needs the text)."""
    consts = em.consts
    op = tier0_factory(em.code, em.next, tuple(consts))(*env, *consts.values())
    if em.heads:
        op.heads = em.heads  # type: ignore[attr-defined]
    if em.dabt_iss:
        op.dabt_iss = em.dabt_iss  # type: ignore[attr-defined]
    return op


def forget() -> None:
    """Drop the compiled shapes and the per-word ops, as in a new process (for measuring cold
    code; ops already built keep working)."""
    _factories.clear()
    _by_word.clear()


def shapes() -> int:
    """How many tier-0 shapes have been compiled (a test bounds it)."""
    return len(_factories)
