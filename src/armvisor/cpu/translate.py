"""Tiers 1 and 2: hot code translated into generated Python functions.

A *block* is a run of emitted instructions (:mod:`armvisor.cpu.emit`) starting at a *head* (an
address some branch targets or a call returns to) and ending at its first branch, before the
first instruction that has no emitter, at the end of its page, or after :data:`MAX_BLOCK`
instructions; its function (tier 1) executes them all and returns the next PC. A *loop* is a
run from a head to a conditional branch back to it, whose other conditional branches all skip
forward over straight-line code (if-then shapes); its function (tier 2) runs whole passes with
the registers in locals while the run's budget has room, and returns where it left and how many
instructions it executed.

Heads earn translation: each one counts its tier-0 executions and is translated after
:data:`HOT_THRESHOLD` of them (``compile()`` costs tens of microseconds per instruction).

Exactness: blocks read and write the architectural state directly; loops write their locals
back whenever they are left. RAM is accessed through the main region's ``memoryview`` casts
after one check per access that catches misalignment and addresses outside the region at once.
Anything else -- an access outside that RAM (MMIO, a fault), a store to a page holding
translated or decoded instructions, a misaligned SP as base -- raises :class:`Deopt` before the
instruction has changed anything; the executor then learns from the traceback's line number
(and the loop's count) which instruction it was and how many ran before it, and runs it at tier
0, which produces the architectural outcome (exits, faults, invalidation of the written page)
exactly as without translation. An instruction that keeps doing so becomes a barrier that
blocks end in front of. The executor only enters a block or loop pass when the run's budget has
room for all of it, so budgets are exact to the instruction.
"""

from __future__ import annotations

import ast
import logging
import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, TracebackType
from typing import TYPE_CHECKING

from armvisor.arch.pstate import CONDITION_TABLE
from armvisor.cpu.emit import ACCESS_SIZES, NEXT_SEQUENTIAL, Emitted, expand
from armvisor.cpu.isa.alu import SUB_FLAGS
from armvisor.cpu.isa.branch import B_COND_NEXT
from armvisor.cpu.memory import PAGE_SHIFT

if TYPE_CHECKING:
    from armvisor.cpu.core import Cpu
    from armvisor.cpu.decoder import Op
    from armvisor.cpu.state import CpuState

log = logging.getLogger("armvisor.translate")  # DEBUG: the source of every translation

MAX_BLOCK = 64  # instructions per block
HOT_THRESHOLD = 200  # tier-0 executions of a head before its block is translated
DEOPT_LIMIT = 16  # hand-backs at one instruction before blocks end in front of it instead

class Deopt(Exception):
    """Raised by translated code before an instruction it does not complete itself."""


@dataclass(frozen=True)
class Block:
    head: int
    count: int  # instructions of one pass (at most, when an if-then part is skipped)
    fn: Callable
    starts: tuple[int, ...]  # first source line of each instruction
    # A loop: fn(s, room) -> (next PC, instructions done), counted in the local n_; else a
    # block: fn(s) -> next PC.
    loop: bool = False

    @property
    def entry(self) -> tuple[Callable, int]:
        """What the executor looks up: (function, count), the count negated for a loop (which
        takes the room left and returns what it did)."""
        return self.fn, -self.count if self.loop else self.count


class _Tier1Expansion:
    """The statement macros of :mod:`armvisor.cpu.emit` over one RAM region's views."""

    def __init__(self, cpu: "Cpu") -> None:
        self.region = cpu.phys.main

    def _check(self, size: int) -> str | None:
        """The condition (on ``off_``, the offset into the region) that an access of ``size``
        bytes misses the fast path, or None if it always does."""
        region = self.region
        if region is None:
            return None
        length = region.size
        bound = (length - 1).bit_length()
        cond = f"off_ & {-(1 << bound) | (size - 1)}"
        if length != 1 << bound:
            cond += f" or off_ > {length - size}"
        return cond

    def load(self, indent: str, name: str, size: int, address: str) -> str:
        cond = self._check(size)
        if cond is None:
            return f"{indent}raise Deopt"
        shift = size.bit_length() - 1
        return (f"{indent}off_ = ({address}) - {self.region.base}\n"
                f"{indent}if {cond}: raise Deopt\n"
                f"{indent}{name} = m{size}[off_ >> {shift}]")

    def _store_check(self, indent: str, size: int, address: str) -> str | None:
        cond = self._check(size)
        if cond is None or self.region.readonly:
            return None
        return (f"{indent}off_ = {address} - {self.region.base}\n"
                f"{indent}if {cond} or {address} >> {PAGE_SHIFT} in cp: raise Deopt")

    def store(self, indent: str, size: int, address: str, value: str) -> str:
        check = self._store_check(indent, size, address)
        if check is None:
            return f"{indent}raise Deopt"
        shift = size.bit_length() - 1
        value = value if size == 8 else f"({value}) & {(1 << (8 * size)) - 1}"
        return f"{check}\n{indent}m{size}[off_ >> {shift}] = {value}"

    def check_store(self, indent: str, size: int, address: str) -> str:
        check = self._store_check(indent, size, address)
        return f"{indent}raise Deopt" if check is None else check

    @staticmethod
    def sp_align(indent: str) -> str:
        return f"{indent}if s.sp & 15: raise Deopt"


MASK64 = (1 << 64) - 1
_REGISTER_LOCAL = re.compile(r"r\d+_|sp_")


class _DropNoOpMasks(ast.NodeTransformer):
    """Remove ``& 0xFFFFFFFFFFFFFFFF`` from values already below 2^64 (the emitted text keeps
    one form for 32- and 64-bit operations; in 64-bit ones the mask is often a no-op): registers,
    SP and loaded data are, and so are bitwise combinations and right shifts of such values."""

    def _bounded(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, int) and 0 <= node.value <= MASK64
        if isinstance(node, ast.Subscript):
            return isinstance(node.value, ast.Name) and node.value.id in {"x", "m1", "m2", "m4", "m8"}
        if isinstance(node, ast.Attribute):
            return isinstance(node.value, ast.Name) and node.value.id == "s" and node.attr == "sp"
        if isinstance(node, ast.Name):
            return bool(_REGISTER_LOCAL.fullmatch(node.id))
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.BitAnd):
                return self._bounded(node.left) or self._bounded(node.right)
            if isinstance(node.op, (ast.BitOr, ast.BitXor)):
                return self._bounded(node.left) and self._bounded(node.right)
            if isinstance(node.op, ast.RShift):
                return self._bounded(node.left)
        if isinstance(node, ast.IfExp):
            return self._bounded(node.body) and self._bounded(node.orelse)
        return False

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        if (isinstance(node.op, ast.BitAnd) and isinstance(node.right, ast.Constant)
                and node.right.value == MASK64 and self._bounded(node.left)):
            return node.left
        return node


def _conditional(em: Emitted) -> bool:
    """A conditional branch (the fall-through path is one of its successors)."""
    return not em.falls_through and NEXT_SEQUENTIAL in em.next


def _skip_target(head: int, ems: list[Emitted], i: int) -> int | None:
    """The index the conditional branch ``ems[i]`` skips forward to, when its target is a later
    instruction of the block and what it skips is straight-line code; else None."""
    target = ems[i].heads[0]
    j = (target - head) // 4
    if target & 3 or not i + 1 < j < len(ems) or any(_conditional(em) for em in ems[i + 1:j]):
        return None
    return j


def _structured(head: int, ems: list[Emitted]) -> bool:
    """Every conditional branch but the last is an if-then skip. (Loops with other exits in the
    middle were measured slower: leaving often costs more than the loop saves.)"""
    i = 0
    while i < len(ems) - 1:
        if _conditional(ems[i]):
            j = _skip_target(head, ems, i)
            if j is None:
                return False
            i = j
        else:
            i += 1
    return True


def _render(exp: _Tier1Expansion, head: int, ems: list[Emitted], indent: str, lines: list[str],
            localise: Callable[[str], str] = str) -> list[int]:
    """Append the instructions' code to ``lines``; returns the first line of each (1-based).
    A conditional branch but the last one must skip forward over straight-line instructions
    (:func:`_structured`): they run under ``if``, and ``n_`` (the instructions a loop skipped,
    negated) drops by their number when they are skipped."""
    starts: list[int] = []
    inner = indent
    join = skipped = 0
    for i, em in enumerate(ems):
        if join == i and skipped:
            lines += [f"{indent}else:", f"{indent}    n_ -= {skipped}"]
            inner, skipped = indent, 0
        starts.append(len(lines) + 1)
        code = expand(em.code, exp.load, exp.store, exp.check_store, exp.sp_align).format_map(em.consts)
        lines.extend(inner + localise(line) for line in code.splitlines())
        if i < len(ems) - 1 and _conditional(em):
            j = _skip_target(head, ems, i)
            assert j is not None and not skipped, "only if-then shapes are rendered"
            lines += [f"{inner}next_ = {localise(em.next.format_map(em.consts))}",
                      f"{inner}if next_ == {em.consts['npc']}:", f"{inner}    pass"]  # may emit no code
            inner, join, skipped = indent + "    ", j, j - i - 1
    return starts


def _bind(cpu: "Cpu", exp: _Tier1Expansion, lines: list[str], name: str, head: int) -> Callable:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("translated 0x%x:\n%s", head, "\n".join(lines))
    views = exp.region.views if exp.region is not None else {}
    namespace = {"x_": cpu.state.x, "cp_": cpu.access.code_pages, "Deopt": Deopt,
                 **{f"m{n}_": views.get(n) for n in ACCESS_SIZES}}
    tree = ast.fix_missing_locations(_DropNoOpMasks().visit(ast.parse("\n".join(lines) + "\n")))
    exec(compile(tree, f"<{name} 0x{head:x}>", "exec"), namespace)
    return namespace[name]


SIGNATURE = "x=x_, m1=m1_, m2=m2_, m4=m4_, m8=m8_, cp=cp_, Deopt=Deopt"


def compile_block(cpu: "Cpu", head: int, ems: list[Emitted]) -> Block:
    """Tier 1: the straight-line instructions ``ems`` from ``head`` as one function,
    ``block_(s) -> next PC``."""
    exp = _Tier1Expansion(cpu)
    name = f"block_{head:x}"  # code objects compare by value: the name tells blocks apart
    lines = [f"def {name}(s, {SIGNATURE}):"]
    starts = _render(exp, head, ems, "    ", lines)
    lines.append(f"    return {ems[-1].next.format_map(ems[-1].consts)}")
    return Block(head, len(ems), _bind(cpu, exp, lines, name, head), tuple(starts))


# Tier 2 keeps registers, SP and NZCV in locals: the state references of the emitted text and
# the local standing for each.
_REGISTER = re.compile(r"\bx\[(\d+)\]")
_LOCAL_STATE = {"s.sp": "sp_", "s.nzcv": "nzcv_"}
_OTHER_STATE = re.compile(r"\bs\.(?!sp\b|nzcv\b)")


# Conditions evaluated on a subtraction's operands a_, b_ and result r_ (width top + 1, sign
# bit S) instead of on its NZCV (Arm ARM C1.2.4 condition codes), by the B.cond ``holds`` mask.
_ON_SUBTRACTION = {
    0: "r_ == 0", 1: "r_ != 0", 2: "a_ >= b_", 3: "a_ < b_", 4: "r_ >> {top}", 5: "r_ >> {top} == 0",
    6: "((a_ ^ b_) & (a_ ^ r_)) >> {top}", 7: "((a_ ^ b_) & (a_ ^ r_)) >> {top} == 0",
    8: "a_ > b_", 9: "a_ <= b_", 10: "(a_ ^ {sign}) >= (b_ ^ {sign})", 11: "(a_ ^ {sign}) < (b_ ^ {sign})",
    12: "(a_ ^ {sign}) > (b_ ^ {sign})", 13: "(a_ ^ {sign}) <= (b_ ^ {sign})",
}
_CONDITION_BY_HOLDS = {sum(1 << nzcv for nzcv, ok in enumerate(CONDITION_TABLE[cond]) if ok): cond
                       for cond in _ON_SUBTRACTION}
_STATEMENT_MACROS = ("LOAD", "STORE", "CHECK_STORE", "SP_ALIGN_CHECK")


def _flags_written_first(em: Emitted) -> bool | None:
    """Whether ``em`` overwrites NZCV without reading it (True), reads it (False), or leaves
    it alone (None)."""
    uses = [line for line in (em.code + "\n" + em.next).splitlines() if "s.nzcv" in line]
    if not uses:
        return None
    return all(line.startswith("s.nzcv = ") and "s.nzcv" not in line[9:] for line in uses)


_TEMPORARY_WRITE = re.compile(r"^\s*(a_|b_|r_) =", re.MULTILINE)


def _fused_compare(head: int, ems: list[Emitted]) -> tuple[int, str] | None:
    """Lazy NZCV for a loop whose last flag write is a SUBS/CMP and that ends ``B.cond head``:
    (index of the compare, the branch condition on its operands), so that the compare need
    not compute NZCV inside the loop; None when that is not exact. It is exact when NZCV is
    dead from the compare to the first flag write of the next pass -- nothing in between reads
    it or can leave the loop (a Deopt exposes the state), and every pass runs the compare (no
    conditional branches) with its operands kept to the end; the loop computes NZCV from the
    last compare when it ends."""
    if len(ems) < 2:
        return None
    branch = ems[-1]
    if (branch.next != B_COND_NEXT or branch.consts["target"] != head
            or branch.consts["holds"] not in _CONDITION_BY_HOLDS):
        return None
    events = [i for i, em in enumerate(ems[:-1]) if _flags_written_first(em) is not None]
    if not events:
        return None
    k = events[-1]
    compare = ems[k]
    lines = compare.code.splitlines()
    if SUB_FLAGS not in lines or _flags_written_first(compare) is not True:
        return None
    tail = "\n".join(lines[lines.index(SUB_FLAGS) + 1:])
    if _TEMPORARY_WRITE.search(tail):
        return None
    first = events[0]
    for i, em in enumerate(ems[:-1]):
        if not em.falls_through:
            return None
        if (i <= first or i > k) and any(macro in em.code for macro in _STATEMENT_MACROS):
            return None
        if i > k and _TEMPORARY_WRITE.search(em.code):
            return None
    if _flags_written_first(ems[first]) is not True:
        return None
    top = compare.consts["top"]
    return k, _ON_SUBTRACTION[_CONDITION_BY_HOLDS[branch.consts["holds"]]].format(top=top, sign=1 << top)


def compile_loop(cpu: "Cpu", head: int, ems: list[Emitted]) -> Block | None:
    """Tier 2: the instructions ``ems`` from ``head``, the last one a branch that may go back
    to ``head`` and the others straight-line or if-then shapes (:func:`_structured`), as one
    loop with the registers it uses in locals: ``loop_(s, room) -> (next PC, instructions
    done)``, running whole passes while ``room`` instructions allow. The locals are written back
    when the loop ends and before a :class:`Deopt` leaves it, so the state is exact wherever
    execution goes on. None if the text touches state other than registers, SP and NZCV."""
    exp = _Tier1Expansion(cpu)
    texts = [expand(em.code, exp.load, exp.store, exp.check_store, exp.sp_align).format_map(em.consts)
             + "\n" + em.next.format_map(em.consts) for em in ems]
    text = "\n".join(texts)
    if _OTHER_STATE.search(text):
        return None
    regs = sorted({int(r) for r in _REGISTER.findall(text)})
    local = {**{f"x[{r}]": f"r{r}_" for r in regs}, **_LOCAL_STATE}

    def localise(src: str) -> str:
        src = _REGISTER.sub(lambda m: local[m[0]], src)
        for ref, name in _LOCAL_STATE.items():
            src = src.replace(ref, name)
        return src

    load = [f"r{r}_ = x[{r}]" for r in regs] + [f"{name} = {ref}" for ref, name in _LOCAL_STATE.items()]
    store = [f"x[{r}] = r{r}_" for r in regs if r < 31] + [f"{ref} = {name}" for ref, name in _LOCAL_STATE.items()]
    count = len(ems)
    name = f"loop_{head:x}"
    lines = [f"def {name}(s, room, {SIGNATURE}):", *("    " + line for line in load),
             f"    if room < {count}:", f"        return {head}, 0  # not a whole pass: the executor never asks",
             "    n_ = p_ = 0", "    try:", f"        for p_ in range(room // {count}):",
             "            pass"]  # a lone "b ." emits no code at all
    fused = _fused_compare(head, ems)
    last = ems[-1]
    exit_flags: list[str] = []
    if fused is not None:
        k, condition = fused
        compare = ems[k]
        flags = SUB_FLAGS.format_map(compare.consts)
        ems = [*ems[:k], compare._replace(code="\n".join(
            line for line in compare.code.splitlines() if line != SUB_FLAGS)), *ems[k + 1:]]
        back = [f"if not ({condition}):", f"    next_ = {last.consts['npc']}", "    break"]
        exit_flags = [localise(flags)]
    starts = _render(exp, head, ems, "            ", lines, localise)
    if fused is None:
        back = _back_edge(localise(last.next.format_map(last.consts)), head)
    lines += [f"            {line}" for line in back]
    lines += ["        else:", f"            next_ = {head}",
              "    except Deopt:", *("        " + line for line in store), "        raise",
              *("    " + line for line in exit_flags + store), f"    return next_, (p_ + 1) * {count} + n_"]
    fn = _bind(cpu, exp, lines, name, head)
    return Block(head, count, fn, tuple(starts), loop=True)


def _back_edge(next_pc: str, head: int) -> list[str]:
    """The end of a pass: stay in the loop while ``next_pc`` (an expression) is ``head``, else
    leave it with ``next_`` set. A conditional expression with ``head`` as one arm becomes a
    test of its condition alone."""
    expr = ast.parse(next_pc, mode="eval").body
    if isinstance(expr, ast.Constant) and expr.value == head:
        return []  # an unconditional branch back: only the room ends the loop
    if isinstance(expr, ast.IfExp):
        for arm, other, negate in ((expr.body, expr.orelse, True), (expr.orelse, expr.body, False)):
            if isinstance(arm, ast.Constant) and arm.value == head:
                test = ast.unparse(expr.test)
                return [f"if {'not ' if negate else ''}({test}):", f"    next_ = {ast.unparse(other)}", "    break"]
    return [f"next_ = {next_pc}", f"if next_ != {head}:", "    break"]


class Tier1:
    """The translated blocks of one PE, the heat of candidate heads, and their invalidation."""

    def __init__(self, cpu: "Cpu") -> None:
        self.cpu = cpu
        # head -> Block.entry: what the executor's loop looks up.
        self.entries: dict[int, tuple[Callable, int]] = {}
        # The code object of each block's function (named after its head, so that blocks of
        # equal text at different heads stay apart) -> the block: where a Deopt came from.
        self.by_code: dict[CodeType, Block] = {}
        self.heat: dict[int, int] = {}  # candidate head -> executions left before translation
        self.page_heads: dict[int, list[int]] = {}
        self.threshold = HOT_THRESHOLD
        self.enabled = True  # False: everything runs at tier 0
        # Instructions that keep leaving translated code (MMIO accesses, mostly): how often
        # each did, and those that blocks now end in front of (they run at tier 0 directly).
        self.deopts: dict[int, int] = {}
        self.barriers: set[int] = set()

    def clear(self) -> None:
        self.entries.clear()
        self.by_code.clear()
        self.page_heads.clear()
        self.deopts.clear()
        self.barriers.clear()
        for head in self.heat:
            self.heat[head] = self.threshold

    def invalidate_page(self, page: int, pcs: list[int]) -> None:
        """Drop the blocks on ``page`` and restart the heat of its heads (``pcs`` are the
        decoded addresses of the page)."""
        for head in self.page_heads.pop(page, ()):
            block = self.entries.pop(head, None)
            if block is not None:
                self.by_code.pop(block[0].__code__, None)
        for pc in pcs:
            if pc in self.heat:
                self.heat[pc] = self.threshold
            self.deopts.pop(pc, None)
            self.barriers.discard(pc)

    # -- heat ------------------------------------------------------------------------------------
    def decoded(self, pc: int, op: "Op") -> "Op":
        """Hook for each newly decoded op: note the heads it names; count executions at ``pc``
        if it is a candidate head. Returns the op to cache."""
        if self.enabled:
            for head in getattr(op, "heads", ()):
                self.candidate(head)
        if self.enabled and self.heat.get(pc, 0) > 0:
            return self._counting(pc, op)
        return op

    def candidate(self, head: int) -> None:
        """Make ``head`` a candidate block head (if it is already decoded, start counting)."""
        if head in self.heat:
            return
        self.heat[head] = self.threshold
        cache = self.cpu.cache
        op = cache.get(head)
        if op is not None:
            cache[head] = self._counting(head, op)

    def _counting(self, pc: int, op: "Op") -> "Op":
        """``op`` counting down the heat of ``pc``; at zero it translates the block there and
        hands the decoded-instruction cache the plain op back."""
        heat, translate, cache = self.heat, self.translate, self.cpu.cache

        def counting(s: "CpuState") -> int:
            left = heat[pc] - 1
            heat[pc] = left
            if not left:
                translate(pc)
                if cache.get(pc) is counting:
                    cache[pc] = op
            return op(s)

        counting.__dict__.update(op.__dict__)  # heads, dabt_iss, is_eret, ...
        return counting

    # -- translation -----------------------------------------------------------------------------
    def translate(self, head: int) -> None:
        """Translate the block at ``head`` (if its first instruction has an emitter)."""
        cpu = self.cpu
        page = head >> PAGE_SHIFT
        ems: list[Emitted] = []
        pc = head
        while len(ems) < MAX_BLOCK and pc >> PAGE_SHIFT == page:
            if pc in self.barriers:
                self.candidate(pc + 4)
                break
            try:
                em = cpu.emitted(cpu.access.fetch(pc)[0], pc)
            except Exception:  # noqa: BLE001 - a fetch that faults ends the block before it
                break
            if em is None:
                self.candidate(pc + 4)  # execution may go on after the untranslated one
                break
            ems.append(em)
            if not em.falls_through and (not _conditional(em) or head in em.heads):
                break  # looking for a loop: past conditional branches, up to one back to head
            pc += 4
        self._drop(head)
        if not ems:
            return
        cpu.access.code_pages.add(page)  # stores to it now leave translated code and invalidate
        block = compile_loop(cpu, head, ems) if head in ems[-1].heads and _structured(head, ems) else None
        if block is None:  # a plain block, up to its first branch
            first = next((i for i, em in enumerate(ems) if not em.falls_through), len(ems) - 1)
            block = compile_block(cpu, head, ems[:first + 1])
        self.entries[head] = block.entry
        self.by_code[block.fn.__code__] = block
        self.page_heads.setdefault(page, []).append(head)

    def _drop(self, head: int) -> None:
        entry = self.entries.pop(head, None)
        if entry is not None:
            self.by_code.pop(entry[0].__code__, None)
            self.page_heads[head >> PAGE_SHIFT].remove(head)

    def deopt(self, tb: TracebackType | None) -> tuple[int, int]:
        """Where a :class:`Deopt` left its block or loop: (address of the instruction not done,
        instructions completed before it). An instruction that does so :data:`DEOPT_LIMIT`
        times becomes a barrier: its block is translated again to end in front of it."""
        while tb is not None:
            block = self.by_code.get(tb.tb_frame.f_code)
            if block is not None:
                index = bisect_right(block.starts, tb.tb_lineno) - 1
                if block.loop:
                    frame = tb.tb_frame.f_locals
                    done = frame["p_"] * block.count + frame["n_"] + index
                else:
                    done = index
                pc = block.head + 4 * index
                seen = self.deopts[pc] = self.deopts.get(pc, 0) + 1
                if seen == DEOPT_LIMIT:
                    self.barriers.add(pc)
                    self.translate(block.head)
                return pc, done
            tb = tb.tb_next
        raise RuntimeError("Deopt raised outside translated code")
