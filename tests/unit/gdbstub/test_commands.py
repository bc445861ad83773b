"""Each packet of the table over a socket pair (gdb manual appendix E, QEMU's replies)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from armvisor import kvm as K
from armvisor.gdbstub import commands
from armvisor.gdbstub.rsp import frame
from armvisor.gdbstub.server import Detached, Finished
from unit.gdbstub.conftest import DATA, ENTRY, VECTORS, Harness

BRK_0 = bytes.fromhex("000020d4")  # BRK #0, little-endian (Arm ARM C6.2.38)


def le(value: int, size: int = 8) -> bytes:
    return value.to_bytes(size, "little").hex().encode()


def expedited(reply: bytes) -> dict[int, bytes]:
    """The registers a ``T`` stop reply expedites (``nn:value;`` fields)."""
    fields = [f.split(b":", 1) for f in reply[3:].split(b";") if f]
    return {int(k, 16): bytes.fromhex(v.decode()) for k, v in fields if re.fullmatch(rb"[0-9a-f]{2}", k)}


def without_registers(reply: bytes) -> bytes:
    """A stop reply without its expedited registers."""
    fields = [f for f in reply[3:].split(b";") if f and not re.fullmatch(rb"[0-9a-f]{2}:[0-9a-f]+", f)]
    return reply[:3] + b"".join(f + b";" for f in fields)


def test_qsupported_advertises_what_is_implemented(stub) -> None:
    features = stub.gdb("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386").split(b";")
    assert set(features) == {b"PacketSize=4000", b"qXfer:features:read+", b"qXfer:threads:read+",
                             b"swbreak+", b"hwbreak+", b"vContSupported+", b"QStartNoAckMode+"}


def test_stop_replies_expedite_every_register(stub) -> None:
    """After a stop, the reply carries all 34 registers, equal to what ``g`` reads."""
    pairs = expedited(stub.gdb("s"))
    regs = bytes.fromhex(stub.gdb("g").decode())
    sizes = [8] * 33 + [4]
    offsets = [sum(sizes[:n]) for n in range(34)]
    assert sorted(pairs) == list(range(34))
    for n in range(34):
        assert pairs[n] == regs[offsets[n]:offsets[n] + sizes[n]]


def test_thread_list_in_one_packet(stub) -> None:
    reply = stub.gdb("qXfer:threads:read::0,fff")
    assert reply[:1] == b"l"
    threads = ET.fromstring(reply[1:]).findall("thread")
    assert [(t.get("id"), t.get("core"), t.get("name")) for t in threads] == [("1", "0", "vcpu0")]
    assert stub.gdb("qXfer:threads:read:x:0,fff") == b"E00"


def test_target_description_is_gdbs_aarch64_core(stub) -> None:
    document, offset = b"", 0
    while True:
        part = stub.gdb(f"qXfer:features:read:target.xml:{offset:x},40")
        document += part[1:]
        offset += len(part) - 1
        if part[:1] == b"l":
            break
        assert part[:1] == b"m"
    root = ET.fromstring(document)
    assert root.findtext("architecture") == "aarch64"
    (feature,) = root.findall("feature")
    assert feature.get("name") == "org.gnu.gdb.aarch64.core"
    regs = [(r.get("name"), r.get("bitsize")) for r in feature.findall("reg")]
    assert regs == [(f"x{n}", "64") for n in range(31)] + [("sp", "64"), ("pc", "64"), ("cpsr", "32")]
    assert stub.gdb("qXfer:features:read:other.xml:0,100") == b"E00"


def test_registers_g_p_and_writes(stub) -> None:
    regs = stub.gdb("g")
    assert len(regs) == 2 * (33 * 8 + 4)
    assert regs[32 * 16:33 * 16] == le(ENTRY)  # pc
    assert regs[33 * 16:] == le(0x3C5, 4)  # cpsr: EL1h, DAIF masked
    assert stub.gdb("p20") == le(ENTRY)
    assert stub.gdb(b"P5=" + le(0xDEADBEEF)) == b"OK" and stub.gdb("p5") == le(0xDEADBEEF)
    assert stub.gdb(b"P1f=" + le(0x4000_1000)) == b"OK"  # sp at EL1h is SP_EL1
    assert stub.machine.vcpus[0].get_one_reg(K.KVM_REG_ARM64_SP_EL1) == 0x4000_1000
    assert stub.gdb("p22") == b"E16" and stub.gdb("P5=00") == b"E16"
    assert stub.gdb(b"G" + regs) == b"OK" and stub.gdb("g") == regs
    assert stub.gdb("G00") == b"E16"


def test_memory_m_M_X(stub) -> None:
    assert stub.gdb(f"m{DATA:x},8") == le(0x1122334455667788)
    assert stub.gdb(f"M{DATA:x},2:aabb") == b"OK"
    assert stub.machine.read_memory(DATA, 2) == b"\xaa\xbb"
    assert stub.gdb(b"X%x,4:}\x03}\x04}]}\x0a" % DATA) == b"OK"
    assert stub.machine.read_memory(DATA, 4) == b"#$}*"
    assert stub.gdb(f"X{DATA:x},0:") == b"OK"
    assert stub.gdb("m0,4") == b"E14" and stub.gdb("M0,1:00") == b"E14"
    assert stub.gdb(f"M{DATA:x},2:aa") == b"E01"


def test_software_breakpoint_is_brk0_in_memory_and_hidden_from_reads(stub) -> None:
    bp = ENTRY + 4
    original = stub.machine.read_memory(bp, 4)
    assert stub.gdb(f"Z0,{bp:x},4") == b"OK"
    assert stub.machine.read_memory(bp, 4) == BRK_0
    assert stub.gdb(f"m{bp:x},4") == original.hex().encode()
    assert without_registers(stub.gdb("vCont;c")) == b"T05swbreak:;thread:1;"
    assert stub.gdb("p20") == le(bp)
    assert without_registers(stub.gdb("vCont;s:1")) == b"T05thread:1;"  # stepped over our own breakpoint
    assert stub.gdb("p0") == le(2) and stub.machine.read_memory(bp, 4) == BRK_0
    assert stub.gdb(f"z0,{bp:x},4") == b"OK" and stub.machine.read_memory(bp, 4) == original
    assert stub.gdb("Z0,10,4") == b"E14"


def test_step_over_mmio_and_guest_brk_reinjected(stub) -> None:
    assert without_registers(stub.gdb("s")) == b"T05thread:1;"
    assert stub.gdb("p20") == le(ENTRY + 4)
    for _ in range(3):
        assert without_registers(stub.gdb("vCont;s:1;c")) == b"T05thread:1;"
    assert stub.gdb("p2") == le(0x90)  # UARTFR through the machine's MMIO
    assert without_registers(stub.gdb("s")) == b"T05thread:1;"  # the guest's BRK #3: delivered at its vector
    assert stub.gdb("p20") == le(VECTORS + 0x200)
    assert stub.machine.vcpus[0].get_one_reg(K.arm64_sys_reg(3, 0, 5, 2, 0)) == 0xF200_0003


def test_hardware_breakpoints_up_to_the_kvm_capability(stub) -> None:
    slots = stub.machine.vm.check_extension(K.KVM_CAP_GUEST_DEBUG_HW_BPS)
    for n in range(slots):
        assert stub.gdb(f"Z1,{ENTRY + 8 + 4 * n:x},4") == b"OK"
    assert stub.gdb(f"Z1,{ENTRY + 0x100:x},4") == b"E1c"
    assert without_registers(stub.gdb("c")) == b"T05hwbreak:;thread:1;"
    assert stub.gdb("p20") == le(ENTRY + 8)


def test_watchpoint_stop_reply_names_the_address(guest_elf) -> None:
    h = Harness(guest_elf)
    try:
        sp = ENTRY + 0x400
        h.gdb(b"P1f=" + le(sp))
        h.gdb(b"P20=" + le(ENTRY + 0x80))
        code = bytes.fromhex("e00f1ff8")  # str x0, [sp, #-16]!  (writes sp - 16)
        h.machine.write_memory(ENTRY + 0x80, code)
        assert h.gdb(f"Z2,{sp - 16:x},8") == b"OK"
        assert without_registers(h.gdb("c")) == b"T05watch:%x;thread:1;" % (sp - 16)
        assert h.gdb(f"z2,{sp - 16:x},8") == b"OK"
        assert h.gdb(f"Z4,{sp - 12:x},2") == b"OK"
        assert h.gdb("Z3,0,0") == b"E1c"
    finally:
        h.close()


def test_threads_and_queries(stub) -> None:
    assert stub.gdb("qfThreadInfo") == b"m1" and stub.gdb("qsThreadInfo") == b"l"
    assert stub.gdb("qC") == b"QC1" and stub.gdb("qAttached") == b"1"
    assert stub.gdb("qOffsets") == b"Text=0;Data=0;Bss=0"
    assert stub.gdb("Hg1") == b"OK" and stub.gdb("Hc-1") == b"OK" and stub.gdb("Hg0") == b"OK"
    assert stub.gdb("Hg2") == b"E16" and stub.gdb("T1") == b"OK" and stub.gdb("T2") == b"E16"
    assert stub.gdb("?") == b"T05thread:1;"
    assert stub.gdb("vCont?") == b"vCont;c;C;s;S;t"
    assert without_registers(stub.gdb("vCont;t:1")) == b"T00thread:1;"
    assert stub.gdb("qqemu.sstepbits") == b"ENABLE=1,NOIRQ=2,NOTIMER=4"
    assert stub.gdb("Qqemu.sstep=1") == b"OK" and stub.gdb("qqemu.sstep") == b"0x1"


def test_unknown_and_malformed_packets(stub) -> None:
    assert stub.gdb("qCRC:0,4") == b""
    assert stub.gdb("vMustReplyEmpty") == b""
    assert stub.gdb("mxyz") == b"E01" and stub.gdb("Z0,1") == b"E01" and stub.gdb("vCont;q") == b"E01"
    assert stub.gdb("g") != b""  # still alive


@pytest.mark.parametrize("command", commands.COMMANDS, ids=lambda c: c.name)
def test_every_table_entry_rejects_garbage_arguments(stub, command) -> None:
    reply = stub.gdb(command.name.encode() + b"\xff!garbage")
    assert reply == b"" if command.exact else reply == b"E01"


def test_monitor_output_comes_in_O_packets(stub) -> None:
    stub.gdb.send_raw(frame(b"qRcmd," + b"exits".hex().encode()))
    out = stub.gdb.reply()
    assert out.startswith(b"O") and bytes.fromhex(out[1:].decode()).startswith(b"vcpu 0:")
    assert stub.gdb.reply() == b"OK"
    stub.gdb.send_raw(frame(b"qRcmd," + b"bogus".hex().encode()))
    assert b"unknown monitor command" in bytes.fromhex(stub.gdb.reply()[1:].decode())
    assert stub.gdb.reply() == b"E16"


def test_no_ack_mode(stub) -> None:
    assert stub.gdb("QStartNoAckMode") == b"OK"
    stub.gdb.send_raw(b"$g#00")  # bad checksum: dropped silently in no-ack mode
    stub.gdb.send_raw(b"$qC#b4")
    assert stub.gdb.reply() == b"QC1"


def test_bad_checksum_gets_a_nack(stub) -> None:
    stub.gdb.send_raw(b"$qC#00")
    stub.gdb.sock.settimeout(2)
    assert stub.gdb.sock.recv(1) == b"-"


def test_guest_finishing_sends_W_and_ends_the_session(stub) -> None:
    assert stub.gdb("c") == b"W00"  # past the guest's own BRK (its vector skips it) to SYSTEM_OFF
    stub.thread.join(timeout=10)
    assert stub.result == [Finished(0, "")]


def test_detach_and_kill(guest_elf) -> None:
    h = Harness(guest_elf)
    try:
        assert h.gdb(f"Z0,{ENTRY + 4:x},4") == b"OK"
        assert h.gdb("D") == b"OK"
        h.thread.join(timeout=10)
        assert isinstance(h.result[0], Detached)
        assert h.machine.read_memory(ENTRY + 4, 4) != BRK_0  # the debugger left no trace
    finally:
        h.close()
    h = Harness(guest_elf)
    try:
        h.gdb.send_raw(b"$k#6b")
        h.thread.join(timeout=10)
        assert h.result == [Finished(0, "killed by gdb")]
    finally:
        h.close()
