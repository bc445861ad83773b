"""gdb-multiarch against armvisor's gdb stub (issue 6): stepi over MMIO of every size and sign,
HVC PSCI_VERSION, a trapped system-register access, WFI and a guest BRK, breakpoints, hardware
breakpoints, watchpoints (FAR), Ctrl-C, two threads, monitor commands, detach and kill.

Expected values are outside truths: the PL011 reset values (ARM PL011 TRM 3.3: UARTFR = TXFE |
RXFE = 0x90), the Arm ARM (sign extension, ESR_ELx for BRK = EC 0x3C | IL | imm16, vector
offset 0x200 for the current EL with SP_ELx, one instruction per step), PSCI (DEN0022: 1.1 =
0x10001, what KVM reports), and what gdb itself prints."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from support.gdb_driver import run_gdb

from armvisor.toolchain import build_elf

pytestmark = pytest.mark.skipif(shutil.which("gdb-multiarch") is None, reason="needs gdb-multiarch")
LINK_LD = Path(__file__).resolve().parents[1] / "guests" / "link.ld"

GUEST = r"""
    .section .text.boot, "ax"
    .global _start
_start:
    adr     x0, vectors
    msr     vbar_el1, x0
    movz    x1, #0x0900, lsl #16
    mov     x3, #0x41
mmio:
    strb    w3, [x1]
    ldrb    w4, [x1, #0x18]
    ldrsb   x5, [x1, #0x18]
    ldrh    w6, [x1, #0x18]
    ldrsb   w7, [x1, #0x18]
    ldr     w8, [x1, #0x18]
    ldrsw   x9, [x1, #0x18]
    ldr     x10, [x1, #0x18]
    strh    w3, [x1]
    str     w3, [x1]
    str     x3, [x1]
hvc_call:
    movz    x0, #0x8400, lsl #16
    hvc     #0
sysreg:
    mov     x3, #0x41
    msr     dbgbvr0_el1, x3
    mrs     x15, dbgbvr0_el1
    mrs     x11, id_aa64mmfr0_el1
    wfi
guest_brk:
    brk     #0x42
after_brk:
    adr     x2, data
    str     x3, [x2]
    ldr     x12, [x2]
    movz    x0, #0x8400, lsl #16
    movk    x0, #0x0008
    hvc     #0
spin:
    b       spin
    .balign 2048
vectors:
    .fill   128, 4, 0xd503201f
    mrs     x13, esr_el1
    mrs     x14, elr_el1
    add     x14, x14, #4
    msr     elr_el1, x14
    eret
    .balign 8
data: .quad 0
"""

SMP_GUEST = r"""
    .section .text.boot, "ax"
    .global _start
_start:
    movz    x0, #0xc400, lsl #16
    movk    x0, #0x0003             // PSCI CPU_ON (SMC64)
    mov     x1, #1                  // target MPIDR: cpu 1
    adr     x2, secondary
    mov     x3, #0x77
    hvc     #0
primary:
    add     x20, x20, #1
    b       primary
secondary:
    mov     x21, x0                 // context id
    add     x22, x22, #2
    b       secondary
"""


def build(tmp_path_factory, name: str, source: str) -> Path:
    d = tmp_path_factory.mktemp(name)
    src = d / f"{name}.S"
    src.write_text(source)
    return build_elf([src], d / f"{name}.elf", link_script=LINK_LD)


@pytest.fixture(scope="module")
def guest(tmp_path_factory) -> Path:
    return build(tmp_path_factory, "gdb_guest", GUEST)


@pytest.fixture(scope="module")
def smp_guest(tmp_path_factory) -> Path:
    return build(tmp_path_factory, "gdb_smp", SMP_GUEST)


@pytest.fixture(scope="module")
def target():
    """``armvisor run -S -gdb tcp::PORT``, the command line outside checks use."""
    return lambda elf, smp=1: [sys.executable, "-m", "armvisor.cli.main", "run", "-S", "-smp", str(smp),
                               "-gdb", "tcp::{port}", str(elf)]


def symbols(elf: Path) -> dict[str, int]:
    with elf.open("rb") as f:
        return {s.name: s["st_value"] for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols() if s.name}


def test_stepi_over_mmio_of_every_size(guest, target) -> None:
    sym = symbols(guest)
    r = run_gdb(target(guest), guest, ["break mmio", "continue", "jregs"] + ["stepi", "jregs"] * 11)
    states = r.regs
    assert [s["pc"] for s in states] == [sym["mmio"] + 4 * k for k in range(12)], r.output
    after = {n: states[n + 1] for n in range(11)}
    assert after[1]["x4"] == 0x90  # LDRB UARTFR
    assert after[2]["x5"] == 0xFFFF_FFFF_FFFF_FF90  # LDRSB Xt: sign-extended to 64 bits
    assert after[3]["x6"] == 0x90  # LDRH
    assert after[4]["x7"] == 0xFFFF_FF90  # LDRSB Wt: sign-extended to 32 bits, upper half 0
    assert after[5]["x8"] == 0x90 and after[6]["x9"] == 0x90 and after[7]["x10"] == 0x90
    for n in range(11):  # nothing but the loaded register and the PC changes
        changed = {k for k in states[n] if states[n][k] != states[n + 1][k]} - {"pc"}
        assert changed == ({f"x{3 + n}"} if 1 <= n <= 7 else set()), (n, changed)
    assert b"AAAA" in r.target_output  # one UART write per store size


def test_stepi_hvc_sysreg_trap_wfi_and_guest_brk(guest, target) -> None:
    sym = symbols(guest)
    r = run_gdb(target(guest), guest, ["break hvc_call", "continue"] + ["stepi", "jregs"] * 8 +
                ["break after_brk", "continue", "jregs"])
    s = r.regs
    assert s[1]["pc"] == sym["sysreg"] and s[1]["x0"] == 0x10001  # PSCI_VERSION 1.1
    assert s[1]["x1"] == s[1]["x2"] == s[1]["x3"] == 0  # SMCCC: x1-x3 cleared by KVM's PSCI
    assert s[4]["pc"] == sym["sysreg"] + 12 and s[4]["x15"] == 0x41  # trapped debug-register read
    assert s[5]["pc"] == sym["sysreg"] + 16  # trapped ID register read: one instruction
    assert s[6]["pc"] == sym["guest_brk"]  # WFI: exactly one instruction
    # The guest's own BRK is delivered to the guest: one step lands on its vector.
    assert s[7]["pc"] == sym["vectors"] + 0x200
    assert s[7]["cpsr"] & 0x3FF == 0x3C5
    final = s[8]
    assert final["pc"] == sym["after_brk"]
    assert final["x13"] == 0xF200_0042  # ESR_EL1: EC 0x3C (BRK), IL, imm16 0x42
    assert final["x14"] == sym["after_brk"]


def test_watchpoints_report_the_accessed_address(guest, target) -> None:
    sym = symbols(guest)
    r = run_gdb(target(guest), guest, ["break after_brk", "continue", "watch *(long *)&data", "continue",
                                       "jregs", "delete", "rwatch *(long *)&data", "continue", "jregs",
                                       "continue"])
    assert "Hardware watchpoint 2: *(long *)&data" in r.output
    assert "Old value = 0" in r.output and "New value = 65" in r.output, r.output
    assert r.regs[0]["pc"] == sym["after_brk"] + 8  # gdb stepped the store, then reported
    assert "Hardware read watchpoint 3: *(long *)&data" in r.output and "Value = 65" in r.output
    assert r.regs[1]["x12"] == 0x41
    assert "exited normally" in r.output and r.target_status in (0, None)


def test_hardware_breakpoint_and_memory(guest, target) -> None:
    sym = symbols(guest)
    r = run_gdb(target(guest), guest, ["hbreak after_brk", "continue", "jregs", "jmem &data 8",
                                       "set var *(long *)&data = 0x1122334455667788", "jmem &data 8",
                                       "break spin", "jmem (long)&spin 4", "continue", "jregs", "kill"])
    assert "Hardware assisted breakpoint 1" in r.output
    assert r.regs[0]["pc"] == sym["after_brk"]
    assert r.mems[0] == bytes(8) and r.mems[1] == (0x1122334455667788).to_bytes(8, "little")
    assert r.mems[2] == bytes.fromhex("00000014")  # B . (not our BRK: breakpoints are hidden)


def test_ctrl_c_interrupts_a_running_guest(guest, target) -> None:
    sym = symbols(guest)
    r = run_gdb(target(guest), guest, ["set $pc = (long)&spin", "continue", "jregs", "stepi", "jregs"],
                interrupt_after=2.0)
    assert "received signal SIGINT" in r.output, r.output
    assert r.regs[0]["pc"] == r.regs[1]["pc"] == sym["spin"]


def test_two_vcpus_are_two_threads(smp_guest, target) -> None:
    sym = symbols(smp_guest)
    r = run_gdb(target(smp_guest, 2), smp_guest, ["break primary", "continue", "info threads", "delete 1",
                                                   "break secondary", "continue", "jregs", "thread 1", "jregs",
                                                   "thread 2", "stepi", "jregs"])
    assert "Thread 2" in r.output and "Thread 1" in r.output, r.output
    second = r.regs[0]
    assert second["pc"] == sym["secondary"] and second["x0"] == 0x77  # CPU_ON context id in x0
    assert r.regs[1]["pc"] in (sym["primary"], sym["primary"] + 4)
    assert r.regs[2]["pc"] == sym["secondary"] + 4 and r.regs[2]["x21"] == 0x77


def test_monitor_commands(guest, target) -> None:
    sym = symbols(guest)
    r = run_gdb(target(guest), guest, ["break sysreg", "continue", "monitor exits", "monitor trace on",
                                       "monitor trace off", "monitor reset", "maint flush register-cache", "jregs",
                                       "monitor help"])
    assert "vcpu 0:" in r.output and "exit_ec_0x16=1" in r.output, r.output  # the HVC exit
    assert r.regs[0]["pc"] == sym["_start"]
    assert "reset" in r.output and "exits" in r.output


def test_detach_lets_the_guest_run_to_completion(guest, target) -> None:
    r = run_gdb(target(guest), guest, ["break after_brk", "continue", "detach"])
    assert r.target_status == 0, r.output
    assert r.target_output.count(b"A") >= 4


TIMER_GUEST = r"""
    .section .text.boot, "ax"
    .global _start
_start:
    adr     x0, vectors
    msr     vbar_el1, x0
    movz    x9, #0x0800, lsl #16    // GICD
    movz    x10, #0x0801, lsl #16   // GICC
    mov     w16, #1
    str     w16, [x9]               // GICD_CTLR
    mov     w16, #(1 << 27)
    str     w16, [x9, #0x100]       // GICD_ISENABLER0: virtual timer PPI
    mov     w16, #0xff
    str     w16, [x10, #4]          // GICC_PMR
    mov     w16, #1
    str     w16, [x10]              // GICC_CTLR
    ldr     x16, =6250000           // 100 ms at CNTFRQ 62.5 MHz
    msr     cntv_tval_el0, x16
    mov     x16, #1
    msr     cntv_ctl_el0, x16
    isb
sleep:
    wfi                             // nothing pending yet: really sleeps until the timer fires
    mrs     x13, cntv_ctl_el0
unmask:
    msr     daifclr, #2             // the timer IRQ is pending: taken at the next boundary
    add     x1, x1, #1
    add     x1, x1, #1
spin:
    b       spin
    .balign 2048
vectors:
    .fill   0x280 / 4, 4, 0xd503201f
irq:
    mov     x2, #1
    b       irq
"""


@pytest.fixture(scope="module")
def timer_guest(tmp_path_factory) -> Path:
    return build(tmp_path_factory, "gdb_timer", TIMER_GUEST)


def test_stepping_a_sleeping_wfi_steps_one_instruction(timer_guest, target) -> None:
    """The WFI sleeps ~100 ms until the timer fires, and the step ends right after it (QEMU 7.2
    executes one more instruction here); IRQs stay blocked while stepping by default."""
    sym = symbols(timer_guest)
    r = run_gdb(target(timer_guest), timer_guest, ["break sleep", "continue"] + ["stepi", "jregs"] * 4)
    s = r.regs
    assert s[0]["pc"] == sym["sleep"] + 4, r.output
    assert s[1]["x13"] == 5  # CNTV_CTL: ENABLE | ISTATUS, the timer fired while asleep
    assert s[2]["pc"] == sym["unmask"] + 4 and s[3]["pc"] == sym["unmask"] + 8 and s[3]["x1"] == 1


def test_stepping_with_irqs_allowed_enters_the_handler(timer_guest, target) -> None:
    sym = symbols(timer_guest)
    r = run_gdb(target(timer_guest), timer_guest, ["maint packet Qqemu.sstep=0x1", "break unmask", "continue"] +
                ["stepi", "jregs"] * 2)
    assert sym["vectors"] + 0x280 in [s["pc"] for s in r.regs], r.output
