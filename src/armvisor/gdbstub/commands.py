"""The gdb packets armvisor understands: one table of command entries, each with a declared
argument schema, as QEMU's gdbstub (``GdbCmdParseEntry`` in gdbstub/gdbstub.c) dispatches them.

A schema is a small pattern over the packet text after the command name:

    L  a hex number          N  a hex number, "0x" allowed (QEMU's qemu.sstep)
    t  a thread id (hex, or -1 for all)
    x  hex-encoded bytes     b  binary data (``}``-escaped) up to the end
    s  a name (up to , : ; =)   c  one character
    [..] an optional part; any other character must appear literally.

A packet whose arguments do not match its schema gets ``E01``; a packet with no entry gets the
empty reply ("not supported", gdb manual E.1). Handlers return a reply, or a run-control request
(:class:`Resume`, :class:`Detach`, :class:`Kill`) the server carries out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from armvisor import kvm as K
from armvisor.gdbstub import registers
from armvisor.gdbstub.breakpoints import WATCH_KINDS, DebugResourceError
from armvisor.gdbstub.rsp import PACKET_SIZE, escape_binary, unescape_binary

if TYPE_CHECKING:
    from armvisor.gdbstub.server import GdbSession

E_MALFORMED = b"E01"
E_FAULT = b"E14"  # EFAULT: memory not accessible
E_INVALID = b"E16"  # EINVAL (0x16): no such thread, register or value
E_NOSPACE = b"E1c"  # ENOSPC: out of debug registers
OK = b"OK"

SSTEP_ENABLE, SSTEP_NOIRQ, SSTEP_NOTIMER = 0x1, 0x2, 0x4  # QEMU's qemu.sstep bits
SSTEP_SUPPORTED = SSTEP_ENABLE | SSTEP_NOIRQ

SUPPORTED_FEATURES = (f"PacketSize={PACKET_SIZE:x}", "qXfer:features:read+", "qXfer:threads:read+",
                      "swbreak+", "hwbreak+", "vContSupported+", "QStartNoAckMode+")


@dataclass(frozen=True)
class Resume:
    """Resume vcpus: index -> "s" (step) or "c" (continue); vcpus not named stay stopped."""

    actions: dict[int, str]


@dataclass(frozen=True)
class Detach:
    reply: bytes = OK


@dataclass(frozen=True)
class Kill:
    reply: bytes | None = None


Result = Union[bytes, Resume, Detach, Kill]
Handler = Callable[..., Result]

_SCHEMA_TOKENS: dict[str, tuple[str, Callable[[bytes], Any]]] = {
    "L": (rb"([0-9a-fA-F]+)", lambda v: int(v, 16)),
    "N": (rb"((?:0x)?[0-9a-fA-F]+)", lambda v: int(v, 16)),
    "t": (rb"(-1|[0-9a-fA-F]+)", lambda v: -1 if v == b"-1" else int(v, 16)),
    "x": (rb"((?:[0-9a-fA-F]{2})*)", lambda v: bytes.fromhex(v.decode("ascii"))),
    "b": (rb"(.*)", bytes),
    "s": (rb"([^,:;=]*)", lambda v: v.decode("latin-1")),
    "c": (rb"(.)", lambda v: v.decode("latin-1")),
}


def compile_schema(schema: str) -> tuple[re.Pattern[bytes], list[Callable[[bytes], Any]]]:
    pattern = b""
    converters: list[Callable[[bytes], Any]] = []
    for ch in schema:
        if ch in _SCHEMA_TOKENS:
            regex, convert = _SCHEMA_TOKENS[ch]
            pattern += regex
            converters.append(convert)
        elif ch == "[":
            pattern += b"(?:"
        elif ch == "]":
            pattern += b")?"
        else:
            pattern += re.escape(ch.encode())
    return re.compile(pattern, re.DOTALL), converters


@dataclass
class Command:
    """One table entry: ``name`` matched at the start of the packet; with ``exact`` the whole
    packet must be the name (``qC``, but not ``qCRC:...``)."""

    name: str
    handler: Handler
    schema: str = ""
    exact: bool = False

    def __post_init__(self) -> None:
        self.pattern, self.converters = compile_schema(self.schema)

    def parse(self, text: bytes) -> list[Any] | None:
        match = self.pattern.fullmatch(text)
        if match is None:
            return None
        try:
            return [None if g is None else conv(g) for g, conv in zip(match.groups(), self.converters)]
        except ValueError:
            return None


# -- handlers ---------------------------------------------------------------------------------
def _supported(session: GdbSession, _features: str | None = None) -> Result:
    return ";".join(SUPPORTED_FEATURES).encode()


def _no_ack(session: GdbSession) -> Result:
    session.channel_no_ack()
    return OK


def _xfer_chunk(document: bytes, offset: int, length: int) -> Result:
    """A ``qXfer`` read reply: ``m`` and a chunk, or ``l`` and the last one."""
    chunk = document[offset:offset + min(length, PACKET_SIZE // 2)]
    more = offset + len(chunk) < len(document)
    return (b"m" if more else b"l") + escape_binary(chunk)


def _xfer_features(session: GdbSession, annex: str, offset: int, length: int) -> Result:
    if annex != "target.xml":
        return b"E00"
    return _xfer_chunk(registers.target_xml(), offset, length)


def _xfer_threads(session: GdbSession, annex: str, offset: int, length: int) -> Result:
    """The thread list in one packet (instead of ``qfThreadInfo``/``qsThreadInfo``): one
    thread per vcpu, on the core of its index."""
    if annex:
        return b"E00"
    threads = "".join(f'<thread id="{n + 1:x}" core="{n}" name="vcpu{n}"/>' for n in range(len(session.vcpus)))
    return _xfer_chunk(f'<?xml version="1.0"?>\n<threads>{threads}</threads>\n'.encode(), offset, length)


def _stop_reason(session: GdbSession) -> Result:
    return session.last_stop_reply


def _read_registers(session: GdbSession) -> Result:
    return registers.read_all(session.vcpu(session.g_thread)).hex().encode()


def _write_registers(session: GdbSession, data: bytes) -> Result:
    try:
        registers.write_all(session.vcpu(session.g_thread), data)
    except (ValueError, K.KvmError):
        return E_INVALID
    return OK


def _read_register(session: GdbSession, regnum: int) -> Result:
    if regnum >= registers.NUM_REGS:
        return E_INVALID
    return registers.read_register(session.vcpu(session.g_thread), regnum).hex().encode()


def _write_register(session: GdbSession, regnum: int, data: bytes) -> Result:
    if regnum >= registers.NUM_REGS or len(data) != registers.REGISTERS[regnum].size:
        return E_INVALID
    try:
        registers.write_register(session.vcpu(session.g_thread), regnum, data)
    except K.KvmError:
        return E_INVALID
    return OK


def _read_memory(session: GdbSession, addr: int, length: int) -> Result:
    data = session.read_memory(addr, min(length, PACKET_SIZE // 2))
    if data is None:
        return E_FAULT
    return data.hex().encode()


def _write_memory_hex(session: GdbSession, addr: int, length: int, data: bytes) -> Result:
    if len(data) != length:
        return E_MALFORMED
    return OK if session.write_memory(addr, data) else E_FAULT


def _write_memory_binary(session: GdbSession, addr: int, length: int, escaped: bytes) -> Result:
    data = unescape_binary(escaped)
    if data is None or len(data) != length:
        return E_MALFORMED
    return OK if not data or session.write_memory(addr, data) else E_FAULT


def _step(session: GdbSession, addr: int | None = None) -> Result:
    return _legacy_resume(session, "s", addr)


def _continue(session: GdbSession, addr: int | None = None) -> Result:
    return _legacy_resume(session, "c", addr)


def _legacy_resume(session: GdbSession, action: str, addr: int | None) -> Result:
    """``s``/``c``: the Hc thread steps or continues; with ``c`` every vcpu continues."""
    thread = session.c_thread
    if addr is not None:
        session.vcpu(thread).set_one_reg(K.KVM_REG_ARM64_PC, addr)
    if action == "s":
        return Resume({thread: "s"})
    return Resume({n: "c" for n in range(len(session.vcpus))})


def _vcont_query(session: GdbSession) -> Result:
    return b"vCont;c;C;s;S;t"


VCONT_ACTION = re.compile(rb"([cst])|([CS])[0-9a-fA-F]{2}")


def _vcont(session: GdbSession, text: bytes) -> Result:
    """``vCont;action[:thread]...``: for each vcpu the leftmost action naming it applies
    (C/S signals mean nothing to a VM and are dropped, as QEMU does in system mode)."""
    actions: dict[int, str] = {}
    for item in text.split(b";"):
        action, _, tid = item.partition(b":")
        match = VCONT_ACTION.fullmatch(action)
        if match is None:
            return E_MALFORMED
        kind = (match.group(1) or match.group(2)).decode().lower()
        if tid:
            try:
                index = session.thread_index(-1 if tid == b"-1" else int(tid, 16))
            except ValueError:
                return E_MALFORMED
            if index is None:
                return E_INVALID
            targets = range(len(session.vcpus)) if index == -1 else [index]
        else:
            targets = range(len(session.vcpus))
        for n in targets:
            actions.setdefault(n, kind)
    running = {n: a for n, a in actions.items() if a != "t"}
    if not running:
        stopped = min(actions)
        return f"T00thread:{stopped + 1:x};".encode()
    return Resume(running)


def _insert(session: GdbSession, kind: int, addr: int, length: int) -> Result:
    return _debug_point(session, kind, addr, length, insert=True)


def _remove(session: GdbSession, kind: int, addr: int, length: int) -> Result:
    return _debug_point(session, kind, addr, length, insert=False)


def _debug_point(session: GdbSession, kind: int, addr: int, length: int, insert: bool) -> Result:
    points = session.points
    try:
        if kind == 0:
            (points.insert_sw if insert else points.remove_sw)(addr)
        elif kind == 1:
            (points.insert_hw if insert else points.remove_hw)(addr)
        elif kind in WATCH_KINDS:
            (points.insert_watch if insert else points.remove_watch)(kind, addr, length)
        else:
            return b""
    except ValueError:
        return E_FAULT
    except DebugResourceError:
        return E_NOSPACE
    return OK


def _set_thread(session: GdbSession, op: str, tid: int) -> Result:
    index = session.thread_index(tid)
    if op not in "gc" or index is None:
        return E_INVALID
    index = max(index, 0)
    if op == "g":
        session.g_thread = index
    else:
        session.c_thread = index
    return OK


def _thread_alive(session: GdbSession, tid: int) -> Result:
    index = session.thread_index(tid)
    return OK if index is not None and index >= 0 else E_INVALID


def _first_thread_info(session: GdbSession) -> Result:
    return b"m" + b",".join(b"%x" % (n + 1) for n in range(len(session.vcpus)))


def _next_thread_info(session: GdbSession) -> Result:
    return b"l"


def _current_thread(session: GdbSession) -> Result:
    return b"QC%x" % (session.g_thread + 1)


def _attached(session: GdbSession, _pid: int | None = None) -> Result:
    return b"1"


def _offsets(session: GdbSession) -> Result:
    return b"Text=0;Data=0;Bss=0"


def _detach(session: GdbSession, _pid: int | None = None) -> Result:
    return Detach()


def _kill(session: GdbSession) -> Result:
    return Kill()


def _vkill(session: GdbSession, _pid: int) -> Result:
    return Kill(OK)


def _monitor(session: GdbSession, command: bytes) -> Result:
    try:
        text = command.decode("ascii")
    except UnicodeDecodeError:
        return E_MALFORMED
    output, ok = session.monitor(text)
    for start in range(0, len(output), PACKET_SIZE // 4):
        session.console(output[start:start + PACKET_SIZE // 4])
    return OK if ok else E_INVALID


def _sstep_bits(session: GdbSession) -> Result:
    return b"ENABLE=%x,NOIRQ=%x,NOTIMER=%x" % (SSTEP_ENABLE, SSTEP_NOIRQ, SSTEP_NOTIMER)


def _sstep_query(session: GdbSession) -> Result:
    return b"0x%x" % session.sstep_flags


def _sstep_set(session: GdbSession, flags: int) -> Result:
    """QEMU's ``Qqemu.sstep=N``: with NOIRQ (the default) no interrupt is taken while
    stepping (KVM_GUESTDBG_BLOCKIRQ); without it a pending IRQ is taken first."""
    if flags & ~(SSTEP_SUPPORTED | SSTEP_NOTIMER) or not flags & SSTEP_ENABLE:
        return E_INVALID
    session.sstep_flags = flags & SSTEP_SUPPORTED
    return OK


COMMANDS: tuple[Command, ...] = (
    Command("?", _stop_reason, exact=True),
    Command("g", _read_registers, exact=True),
    Command("G", _write_registers, "x"),
    Command("p", _read_register, "L"),
    Command("P", _write_register, "L=x"),
    Command("m", _read_memory, "L,L"),
    Command("M", _write_memory_hex, "L,L:x"),
    Command("X", _write_memory_binary, "L,L:b"),
    Command("s", _step, "[L]"),
    Command("c", _continue, "[L]"),
    Command("vCont?", _vcont_query, exact=True),
    Command("vCont;", _vcont, "b"),
    Command("Z", _insert, "L,L,L"),
    Command("z", _remove, "L,L,L"),
    Command("H", _set_thread, "ct"),
    Command("T", _thread_alive, "t"),
    Command("D", _detach, "[;L]"),
    Command("k", _kill, exact=True),
    Command("vKill;", _vkill, "L"),
    Command("qSupported", _supported, "[:b]"),
    Command("QStartNoAckMode", _no_ack, exact=True),
    Command("qXfer:features:read:", _xfer_features, "s:L,L"),
    Command("qXfer:threads:read:", _xfer_threads, "s:L,L"),
    Command("qfThreadInfo", _first_thread_info, exact=True),
    Command("qsThreadInfo", _next_thread_info, exact=True),
    Command("qC", _current_thread, exact=True),
    Command("qAttached", _attached, "[:L]"),
    Command("qOffsets", _offsets, exact=True),
    Command("qRcmd,", _monitor, "x"),
    Command("qqemu.sstepbits", _sstep_bits, exact=True),
    Command("qqemu.sstep", _sstep_query, exact=True),
    Command("Qqemu.sstep=", _sstep_set, "N"),
)

# Longest names first, so that "vCont?" wins over "vCont;" and "qC" only matches what is left.
_BY_LENGTH = sorted(COMMANDS, key=lambda c: -len(c.name))


def lookup(packet: bytes) -> tuple[Command, bytes] | None:
    for command in _BY_LENGTH:
        name = command.name.encode()
        if packet.startswith(name):
            rest = packet[len(name):]
            if command.exact and rest:
                continue
            return command, rest
    return None


def dispatch(session: GdbSession, packet: bytes) -> Result:
    """Run one packet: the entry's handler with the parsed arguments, ``E01`` for arguments
    that do not match the schema, the empty reply for an unknown packet."""
    found = lookup(packet)
    if found is None:
        return b""
    command, rest = found
    if command.exact:
        return command.handler(session)
    args = command.parse(rest)
    if args is None:
        return E_MALFORMED
    return command.handler(session, *args)
