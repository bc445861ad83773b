"""handle_trap_exceptions' condition check and instruction skip with synthetic syndromes
(KVM kvm_condition_valid32, kvm_skip_instr32, kvm_adjust_itstate; Arm ARM G1.9.4 ITSTATE)."""

from __future__ import annotations

import pytest

from armvisor.arch.esr import ESR_ELx_CV, ESR_ELx_EC_CP15_32, ESR_ELx_EC_HVC32, ESR_ELx_EC_WFx, esr
from armvisor.arch.pstate import CONDITION_TABLE
from armvisor.hyp.adjust_pc import PSR_AA32_T_BIT, itstate, kvm_skip_instr, with_itstate
from armvisor.hyp.handle_exit import kvm_condition_valid

SVC_MODE = 0x13 | 0x10  # AArch32 SVC mode (M[4] set)
NZCV = {"N": 8, "Z": 4, "C": 2, "V": 1}


def cpsr(nzcv: int = 0, thumb: bool = False, it: int = 0) -> int:
    value = (nzcv << 28) | SVC_MODE | (PSR_AA32_T_BIT if thumb else 0)
    return with_itstate(value, it)


def test_aarch64_traps_are_always_valid() -> None:
    assert kvm_condition_valid(esr(ESR_ELx_EC_WFx, 0), 0x3C5)


@pytest.mark.parametrize("cond", range(16))
@pytest.mark.parametrize("nzcv", range(16))
def test_cv_condition_against_nzcv(cond: int, nzcv: int) -> None:
    syndrome = esr(ESR_ELx_EC_CP15_32, ESR_ELx_CV | (cond << 20))
    # Arm ARM ConditionHolds; 0b1111 never passes for a trapped AArch32 instruction in KVM.
    expected = True if cond == 0xE else (False if cond == 0xF else CONDITION_TABLE[cond][nzcv])
    assert kvm_condition_valid(syndrome, cpsr(nzcv)) == expected


def test_unconditional_classes_ignore_cond() -> None:
    syndrome = esr(ESR_ELx_EC_HVC32, ESR_ELx_CV | (0x0 << 20))  # EC >= 0x10
    assert kvm_condition_valid(syndrome, cpsr(nzcv=0))


def test_thumb_without_cv_uses_itstate() -> None:
    # IT block "IT EQ": IT[7:4] = EQ (0000), mask in IT[3:0] = 1000 (one instruction).
    syndrome = esr(ESR_ELx_EC_CP15_32, 0)
    assert not kvm_condition_valid(syndrome, cpsr(nzcv=0, thumb=True, it=0x08))
    assert kvm_condition_valid(syndrome, cpsr(nzcv=NZCV["Z"], thumb=True, it=0x08))
    assert kvm_condition_valid(syndrome, cpsr(nzcv=0, thumb=True, it=0))  # outside IT: valid


def test_skip_aarch64_is_four_and_clears_ss() -> None:
    pc, pstate = kvm_skip_instr(0x1000, 0x3C5 | (1 << 21), il32=True)
    assert (pc, pstate) == (0x1004, 0x3C5)


@pytest.mark.parametrize("thumb,il32,step", [(True, False, 2), (True, True, 4), (False, True, 4)])
def test_skip_aarch32_sizes(thumb: bool, il32: bool, step: int) -> None:
    pc, _ = kvm_skip_instr(0x8000, cpsr(thumb=thumb) | (1 << 21), il32=il32)
    assert pc == 0x8000 + step


def test_itstate_advances_and_ends() -> None:
    # "ITTE NE": firstcond NE = 0b0001, mask 0b1010 -> IT = 0x1A. Worked by hand from the
    # Arm ARM ITAdvance pseudocode: 0x1A -> 0x14 (NE) -> 0x08 (EQ, the "else") -> 0x00.
    state = cpsr(thumb=True, it=0x1A)
    seen = []
    for _ in range(3):
        _, state = kvm_skip_instr(0x8000, state, il32=False)
        seen.append(itstate(state))
    assert seen == [0x14, 0x08, 0x00]
