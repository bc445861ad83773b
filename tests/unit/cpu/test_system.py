"""Exception-generating and system instructions: the syndrome of every trap to EL2 and to EL1,
the untrapped EL1 behaviour, hints, barriers, PSTATE access, self-modifying code.

Syndromes are composed here from the Arm ARM's ISS layouts (D17.2.37), independently of
armvisor.arch.esr: EC<<26 | IL<<25 | ISS, and for EC 0x18
Op0<<20 | Op2<<17 | Op1<<14 | CRn<<10 | Rt<<5 | CRm<<1 | Direction.
"""

from __future__ import annotations

import pytest

from armvisor.arch.sysregs import ELR_EL1, ESR_EL1, SCTLR_EL1, SCTLR_EL1_RESET
from armvisor.cpu import Budget, HypTrap, WaitForInterrupt
from unit.cpu.test_exceptions import CURRENT_SPX, DATA, IL, LOWER_A64, RAM, VBAR, asm, machine, run, syndrome


def sys64(op0: int, op1: int, crn: int, crm: int, op2: int, rt: int, read: bool) -> int:
    iss = op0 << 20 | op2 << 17 | op1 << 14 | crn << 10 | rt << 5 | crm << 1 | int(read)
    return 0x18 << 26 | IL | iss


def hyp_trap(code: str, el: int = 1, hcr: int = 0, mdcr: int = 0, steps: int = 1) -> HypTrap:
    cpu = machine(code, el)
    cpu.state.hcr_el2 = hcr
    cpu.state.mdcr_el2 = mdcr
    cpu.state.x[:31] = range(100, 131)
    before = list(cpu.state.x)
    stop = cpu.run(steps)
    assert isinstance(stop, HypTrap), stop
    assert cpu.state.pc == stop.elr
    if stop.elr == RAM + 4 * (steps - 1):  # trapped before executing: nothing changed
        assert cpu.state.x == before
    return stop


# -- HVC, SMC, BRK -------------------------------------------------------------------------------
def test_hvc_traps_to_el2_returning_after_it() -> None:
    stop = hyp_trap("nop\nhvc #0x4321", steps=2)
    assert stop.esr == 0x16 << 26 | IL | 0x4321 and stop.elr == RAM + 8


def test_smc_trapped_by_tsc_returns_to_the_smc() -> None:
    stop = hyp_trap("nop\nsmc #0x77", hcr=1 << 19, steps=2)
    assert stop.esr == 0x17 << 26 | IL | 0x77 and stop.elr == RAM + 4


@pytest.mark.parametrize("code, el, hcr", [
    ("hvc #1", 0, 0), ("hvc #1", 1, 1 << 29),  # at EL0; with HCR_EL2.HCD
    ("smc #0", 1, 0), ("smc #0", 0, 1 << 19),  # without TSC (no EL3 firmware); at EL0
    ("hlt #1", 1, 0), ("dcps1", 1, 0), ("dcps2", 1, 0), ("dcps3", 1, 0), ("udf #1", 1, 0)])
def test_undefined_exception_generating_instructions(code: str, el: int, hcr: int) -> None:
    cpu = machine(code, el)
    cpu.state.hcr_el2 = hcr
    run(cpu, 1)
    assert syndrome(cpu) == (0, 0) and cpu.state.sr[ELR_EL1] == RAM


def test_brk_with_tde_goes_to_el2() -> None:
    stop = hyp_trap("brk #0x55", mdcr=1 << 8)
    assert stop.esr == 0x3C << 26 | IL | 0x55 and stop.elr == RAM


# -- WFI / WFE -----------------------------------------------------------------------------------
WFI_ISS = 1 << 24 | 0xE << 20


@pytest.mark.parametrize("code, hcr, ti", [("wfi", 1 << 13, 0), ("wfe", 1 << 14, 1)])
def test_wfx_trapped_to_el2(code: str, hcr: int, ti: int) -> None:
    for el in (0, 1):
        cpu = machine(code, el)
        cpu.state.sr[SCTLR_EL1] = SCTLR_EL1_RESET  # nTWI = nTWE = 1: EL0 not trapped to EL1
        cpu.state.hcr_el2 = hcr
        stop = cpu.run(1)
        assert isinstance(stop, HypTrap)
        assert stop.esr == 0x01 << 26 | IL | WFI_ISS | ti and stop.elr == RAM


@pytest.mark.parametrize("code, ti", [("wfi", 0), ("wfe", 1)])
def test_wfx_at_el0_trapped_to_el1_by_sctlr(code: str, ti: int) -> None:
    cpu = machine(code, el=0)
    cpu.state.sr[SCTLR_EL1] = 0
    cpu.state.hcr_el2 = (1 << 13) | (1 << 14)  # EL1's trap comes first
    run(cpu, 1)
    assert syndrome(cpu) == (0x01, WFI_ISS | ti) and cpu.state.pc == VBAR + LOWER_A64


def test_wfi_untrapped_waits_after_the_wfi() -> None:
    cpu = machine("nop\nwfi")
    stop = cpu.run(10)
    assert isinstance(stop, WaitForInterrupt) and cpu.state.pc == RAM + 8


def test_wfe_consumes_the_event_register_and_sev_sets_it() -> None:
    cpu = machine("sevl\nwfe\nwfe\nsev")
    s = cpu.state
    run(cpu, 1)
    assert s.event_register == 1
    run(cpu, 1)
    assert s.event_register == 0 and s.pc == RAM + 8
    run(cpu, 2)  # WFE with no event completes (spurious wake-up); SEV sets the event
    assert s.event_register == 1 and s.pc == RAM + 16


# -- hints and barriers ---------------------------------------------------------------------------
def test_every_hint_is_a_nop() -> None:
    hints = [0xD503201F | (n << 5) for n in range(128) if n not in (2, 3, 4, 5)]
    cpu = machine(hints)
    cpu.state.x[:31] = range(31)
    run(cpu, len(hints))
    assert cpu.state.pc == RAM + 4 * len(hints) and cpu.state.x[:31] == list(range(31))


def test_barriers_and_clrex() -> None:
    cpu = machine("dsb sy\ndmb ish\nisb\ndsb #0\nclrex")
    cpu.state.exclusive = (DATA, 8)
    run(cpu, 4)
    assert cpu.state.exclusive == (DATA, 8)
    run(cpu, 1)
    assert cpu.state.exclusive is None and cpu.state.pc == RAM + 20


@pytest.mark.parametrize("word", [
    0xD50330FF,  # SB (FEAT_SB)
    0xD503301F,  # op2=000 of the barrier group
    0xD503307F,  # TCOMMIT-space (op2=011)
    0xD503323F,  # DSB nXS (FEAT_XS, op2=001 CRm=xx10)
    0xD500409F,  # MSR PAN, #0 (FEAT_PAN)
    0xD500407F,  # MSR UAO, #0
    0xD503405F,  # MSR DIT, #0
    0xD503403F,  # MSR SSBS, #0
    0xD503409F,  # MSR TCO, #0
    0xD500401F,  # CFINV
    0xD503203E,  # hint space with Rt != 31 is unallocated
    0xD528001F,  # SYSL
])
def test_later_extension_system_encodings_are_undefined(word: int) -> None:
    cpu = machine([word])
    run(cpu, 1)
    assert syndrome(cpu) == (0, 0)


# -- MSR (immediate) ------------------------------------------------------------------------------
def test_daifset_daifclr_and_spsel() -> None:
    cpu = machine("msr daifset, #0xa\nmsr daifclr, #0x2\nmsr spsel, #0\nmsr spsel, #1")
    s = cpu.state
    s.daif = 0x40
    s.set_sp_el(0, 0x100)
    s.set_sp_el(1, 0x200)
    run(cpu, 1)
    assert s.daif == 0x40 | 0x280
    run(cpu, 1)
    assert s.daif == 0x240
    run(cpu, 1)
    assert (s.spsel, s.sp) == (0, 0x100)
    run(cpu, 1)
    assert (s.spsel, s.sp) == (1, 0x200)


def test_daif_at_el0_needs_uma() -> None:
    cpu = machine("msr daifset, #3", el=0)
    cpu.state.sr[SCTLR_EL1] = 0
    run(cpu, 1)
    assert syndrome(cpu) == (0x18, 0b110 << 17 | 0b011 << 14 | 4 << 10 | 31 << 5 | 3 << 1)
    assert cpu.state.sr[ELR_EL1] == RAM and cpu.state.sr[0xC200] & 0x3C0 == 0  # SPSR: DAIF clear
    cpu = machine("msr daifset, #3", el=0)
    cpu.state.sr[SCTLR_EL1] = 1 << 9
    run(cpu, 1)
    assert cpu.state.daif == 0xC0 and cpu.state.el == 0


def test_spsel_at_el0_is_undefined() -> None:
    cpu = machine("msr spsel, #1", el=0)
    run(cpu, 1)
    assert syndrome(cpu) == (0, 0) and cpu.state.pc == VBAR + LOWER_A64


# -- system register and SYS traps to EL2 ------------------------------------------------------
HCR_BITS = {"TID1": 16, "TID2": 17, "TID3": 18, "TACR": 21, "TSW": 22, "TPC": 23, "TPU": 24,
            "TTLB": 25, "TVM": 26, "TDZ": 28, "TRVM": 30}
MDCR_BITS = {"TPMCR": 5, "TPM": 6, "TDE": 8, "TDA": 9, "TDOSA": 10, "TDRA": 11}

TRAPS = [
    # (group, instruction, (op0, op1, CRn, CRm, op2), Rt, read)
    ("TID1", "mrs x3, revidr_el1", (3, 0, 0, 0, 6), 3, True),
    ("TID1", "mrs x4, aidr_el1", (3, 1, 0, 0, 7), 4, True),
    ("TID2", "mrs x5, ctr_el0", (3, 3, 0, 0, 1), 5, True),
    ("TID2", "mrs x6, ccsidr_el1", (3, 1, 0, 0, 0), 6, True),
    ("TID2", "mrs x7, clidr_el1", (3, 1, 0, 0, 1), 7, True),
    ("TID2", "msr csselr_el1, x8", (3, 2, 0, 0, 0), 8, False),
    ("TID3", "mrs x9, id_aa64pfr0_el1", (3, 0, 0, 4, 0), 9, True),
    ("TID3", "mrs x10, id_aa64mmfr0_el1", (3, 0, 0, 7, 0), 10, True),
    ("TID3", "mrs x11, s3_0_c0_c7_5", (3, 0, 0, 7, 5), 11, True),  # reserved, RAZ
    ("TID3", "mrs x12, id_isar5_el1", (3, 0, 0, 2, 5), 12, True),
    ("TACR", "mrs x13, actlr_el1", (3, 0, 1, 0, 1), 13, True),
    ("TACR", "msr actlr_el1, x14", (3, 0, 1, 0, 1), 14, False),
    ("TVM", "msr sctlr_el1, x15", (3, 0, 1, 0, 0), 15, False),
    ("TVM", "msr ttbr0_el1, x16", (3, 0, 2, 0, 0), 16, False),
    ("TVM", "msr contextidr_el1, x17", (3, 0, 13, 0, 1), 17, False),
    ("TVM", "msr mair_el1, xzr", (3, 0, 10, 2, 0), 31, False),
    ("TRVM", "mrs x18, tcr_el1", (3, 0, 2, 0, 2), 18, True),
    ("TRVM", "mrs x19, far_el1", (3, 0, 6, 0, 0), 19, True),
    ("TSW", "dc cisw, x20", (1, 0, 7, 14, 2), 20, False),
    ("TSW", "dc isw, x21", (1, 0, 7, 6, 2), 21, False),
    ("TPC", "dc civac, x22", (1, 3, 7, 14, 1), 22, False),
    ("TPC", "dc ivac, x23", (1, 0, 7, 6, 1), 23, False),
    ("TPU", "ic ivau, x24", (1, 3, 7, 5, 1), 24, False),
    ("TPU", "ic iallu", (1, 0, 7, 5, 0), 31, False),
    ("TPU", "dc cvau, x25", (1, 3, 7, 11, 1), 25, False),
    ("TTLB", "tlbi vmalle1is", (1, 0, 8, 3, 0), 31, False),
    ("TTLB", "tlbi vae1, x26", (1, 0, 8, 7, 1), 26, False),
    ("TDZ", "dc zva, x27", (1, 3, 7, 4, 1), 27, False),
    ("TDA", "mrs x28, mdscr_el1", (2, 0, 0, 2, 2), 28, True),
    ("TDA", "msr dbgbcr3_el1, x29", (2, 0, 0, 3, 5), 29, False),
    ("TDA", "mrs x0, dbgwvr1_el1", (2, 0, 0, 1, 6), 0, True),
    ("TDA", "msr mdccint_el1, x1", (2, 0, 0, 2, 0), 1, False),
    ("TDA", "msr dbgclaimset_el1, x2", (2, 0, 7, 8, 6), 2, False),
    ("TDE", "mrs x3, dbgbvr0_el1", (2, 0, 0, 0, 4), 3, True),
    ("TDOSA", "msr oslar_el1, x4", (2, 0, 1, 0, 4), 4, False),
    ("TDOSA", "mrs x5, oslsr_el1", (2, 0, 1, 1, 4), 5, True),
    ("TDOSA", "msr osdlr_el1, x6", (2, 0, 1, 3, 4), 6, False),
    ("TDOSA", "mrs x7, dbgprcr_el1", (2, 0, 1, 4, 4), 7, True),
    ("TDE", "msr oslar_el1, x8", (2, 0, 1, 0, 4), 8, False),
    ("TDRA", "mrs x9, mdrar_el1", (2, 0, 1, 0, 0), 9, True),
    ("TDE", "mrs x10, mdrar_el1", (2, 0, 1, 0, 0), 10, True),
    ("TPM", "mrs x11, pmccntr_el0", (3, 3, 9, 13, 0), 11, True),
    ("TPM", "msr pmcr_el0, x12", (3, 3, 9, 12, 0), 12, False),
    ("TPMCR", "mrs x13, pmcr_el0", (3, 3, 9, 12, 0), 13, True),
]


DEBUG = ("TDE", "TDA", "TDOSA", "TDRA")
PMU = ("TPM", "TPMCR")


def _controls(group: str) -> tuple[int, int]:
    if group in HCR_BITS:
        return 1 << HCR_BITS[group], 0
    return 0, 1 << MDCR_BITS[group]


@pytest.mark.parametrize("group, code, enc, rt, read", TRAPS, ids=[t[1] for t in TRAPS])
def test_sysreg_trap_syndrome(group: str, code: str, enc: tuple[int, ...], rt: int, read: bool) -> None:
    hcr, mdcr = _controls(group)
    stop = hyp_trap("nop\n" + code, hcr=hcr, mdcr=mdcr, steps=2)
    assert stop.esr == sys64(*enc, rt, read), hex(stop.esr)
    assert stop.elr == RAM + 4


@pytest.mark.parametrize("group, code, enc, rt, read", TRAPS, ids=[t[1] for t in TRAPS])
def test_sysreg_not_trapped_without_its_control(group: str, code: str, enc: tuple[int, ...], rt: int,
                                                read: bool) -> None:
    """With every other trap control set the access executes at EL1 (TVM traps writes only,
    TRVM reads only; TPMCR does not trap the other PMU registers)."""
    related = {"TDE", "TDA", "TDOSA", "TDRA"} if group in DEBUG else {"TPM", "TPMCR"} if group in PMU else set()
    hcr = sum(1 << b for g, b in HCR_BITS.items() if g != group)
    mdcr = sum(1 << b for g, b in MDCR_BITS.items() if g != group and g not in related)
    cpu = machine(code)
    cpu.state.hcr_el2, cpu.state.mdcr_el2 = hcr, mdcr
    cpu.state.x[:31] = [DATA] * 31  # addresses for the maintenance operations
    cpu.state.sr[SCTLR_EL1] = 0  # a write of DATA to SCTLR_EL1 must not enable the MMU
    stop = cpu.run(1)
    assert isinstance(stop, Budget), stop
    assert cpu.state.pc == RAM + 4


def test_el0_enable_checked_before_el2_trap() -> None:
    """CTR_EL0 at EL0 with SCTLR_EL1.UCT=0 traps to EL1 even with HCR_EL2.TID2 set."""
    cpu = machine("mrs x2, ctr_el0", el=0)
    cpu.state.sr[SCTLR_EL1] = 0
    cpu.state.hcr_el2 = 1 << 17
    run(cpu, 1)
    assert cpu.state.pc == VBAR + LOWER_A64
    assert syndrome(cpu) == (0x18, sys64(3, 3, 0, 0, 1, 2, True) & 0x1FFFFFF)
    cpu = machine("mrs x2, ctr_el0", el=0)
    cpu.state.sr[SCTLR_EL1] = 1 << 15
    cpu.state.hcr_el2 = 1 << 17
    stop = cpu.run(1)
    assert isinstance(stop, HypTrap) and stop.esr == sys64(3, 3, 0, 0, 1, 2, True)


def test_el0_undefined_before_el2_trap() -> None:
    cpu = machine("mrs x2, id_aa64pfr0_el1", el=0)
    cpu.state.hcr_el2 = 1 << 18
    run(cpu, 1)
    assert syndrome(cpu) == (0, 0) and cpu.state.pc == VBAR + LOWER_A64


@pytest.mark.parametrize("code, enc, enable", [
    ("dc zva, x3", (1, 3, 7, 4, 1), 1 << 14),
    ("dc civac, x3", (1, 3, 7, 14, 1), 1 << 26),
    ("ic ivau, x3", (1, 3, 7, 5, 1), 1 << 26),
])
def test_el0_cache_maintenance_needs_its_sctlr_enable(code: str, enc: tuple[int, ...], enable: int) -> None:
    cpu = machine(code, el=0)
    cpu.state.x[3] = DATA
    cpu.state.sr[SCTLR_EL1] = 0
    run(cpu, 1)
    assert syndrome(cpu) == (0x18, sys64(*enc, 3, False) & 0x1FFFFFF)
    cpu = machine(code, el=0)
    cpu.state.x[3] = DATA
    cpu.state.sr[SCTLR_EL1] = enable
    run(cpu, 1)
    assert cpu.state.pc == RAM + 4 and cpu.state.el == 0


def test_dc_ivac_at_el0_is_undefined() -> None:
    cpu = machine("dc ivac, x3", el=0)
    run(cpu, 1)
    assert syndrome(cpu) == (0, 0)


# -- self-modifying code --------------------------------------------------------------------------
def _smc_loop(target_offset: int) -> list[int]:
    """A loop that runs the BL at ``target_offset`` once, then zeroes its 64-byte block with
    DC ZVA (0x00000000 is UDF #0) and branches to it again."""
    words = asm(f"""
        cbnz x30, 1f
        b target
    1:  dc zva, x1
        b target
        .org {target_offset}
    target:
        bl after
        .org {target_offset + 0x40}
    after:
        b 0
    """.replace("b 0", f"b . - {target_offset + 0x40}"))
    return words


@pytest.mark.parametrize("target_offset", [0x40, 0x1000])
def test_self_modifying_code_through_dc_zva(target_offset: int) -> None:
    """Same page as the loop (0x40) and another page (0x1000)."""
    cpu = machine(_smc_loop(target_offset))
    cpu.state.x[1] = RAM + target_offset
    cpu.state.x[30] = 0
    run(cpu, 8)  # cbnz, b, bl, b back, cbnz, dc zva, b, udf
    assert syndrome(cpu) == (0, 0)
    assert cpu.state.sr[ELR_EL1] == RAM + target_offset


def test_self_modifying_code_through_a_store() -> None:
    """STR W2 over an instruction later in the same iteration (needs the load/store group)."""
    words = asm("""
        str w2, [x1]
        nop
    patched:
        movz x0, #1
        b .
    """)
    cpu = machine(words)
    if cpu.decode(words[0], RAM).__name__ == "undefined":
        pytest.skip("stores are not implemented yet")
    cpu.state.x[1] = RAM + 8
    cpu.state.x[2] = asm("movz x0, #2")[0]
    cpu.cache[RAM + 8] = cpu.decode_at(RAM + 8)  # the old instruction is already decoded
    run(cpu, 3)
    assert cpu.state.x[0] == 2
    # and again, in a loop: the patched instruction was decoded and cached on the first pass
    cpu = machine(asm("""
    loop:
        movz x0, #1
        str w2, [x1]
        b loop
    """))
    cpu.state.x[1] = RAM
    cpu.state.x[2] = asm("movz x0, #3")[0]
    run(cpu, 4)
    assert cpu.state.x[0] == 3


def test_sysreg_read_writes_xt() -> None:
    cpu = machine("mrs x7, midr_el1\nmrs xzr, midr_el1")
    run(cpu, 2)
    assert cpu.state.x[7] == 0x411FD070 and cpu.state.x[31] == 0


def test_esr_of_el1_trap_is_in_esr_el1_not_el2() -> None:
    cpu = machine("svc #3")
    cpu.state.hcr_el2 = ~0 & ((1 << 64) - 1)
    cpu.state.mdcr_el2 = ~0 & ((1 << 64) - 1)
    run(cpu, 1)
    assert cpu.state.sr[ESR_EL1] == 0x15 << 26 | IL | 3 and cpu.state.pc == VBAR + CURRENT_SPX
