"""Trapped system-register accesses, EC 0x18 (arch/arm64/kvm/sys_regs.c kvm_handle_sys_reg).

The table is keyed by encoding; an encoding KVM traps but does not describe is injected as
UNDEFINED with PC unchanged. A handled access updates Rt (for reads) and advances PC.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from armvisor.arch.sysreg_encoding import sys_reg
from armvisor.arch.sysregs import (
    ACTLR_EL1,
    ICC_TRAP_GROUPS,
    MDSCR_EL1,
    OSLAR_EL1,
    OSLSR_EL1,
    SYSREGS,
)
from armvisor.cpu.debug import (
    DBGBCR,
    DBGBVR,
    DBGWCR,
    DBGWVR,
    NUM_BRPS,
    NUM_WRPS,
    OSLSR_EL1_OSLK,
)
from armvisor.hyp.convention import RESUME
from armvisor.hyp.inject import kvm_inject_undefined
from armvisor.hyp.vgic import ICC_ACCESSORS, VgicV3

if TYPE_CHECKING:
    from armvisor.hyp.vcpu import Vcpu

# accessor(vcpu, enc, is_write, value) -> value read (ignored for writes), or None = UNDEFINED
Accessor = Callable[["Vcpu", int, bool, int], "int | None"]

ID_AA64PFR0_EL1 = sys_reg(3, 0, 0, 4, 0)
ID_AA64PFR0_EL1_EL2_MASK = 0xF << 8
MDRAR_EL1 = sys_reg(2, 0, 1, 0, 0)
OSDLR_EL1 = sys_reg(2, 0, 1, 3, 4)
DBGPRCR_EL1 = sys_reg(2, 0, 1, 4, 4)
ID_REG_TRAPS = ("TID1", "TID2", "TID3")  # the ID registers: read-only, sanitised


def _is_id_space(enc: int) -> bool:
    """op0=3, op1=0, CRn=0, CRm=0..7: the ID register space trapped by TID3/TID1 (RAZ where
    unallocated)."""
    return enc >> 7 == sys_reg(3, 0, 0, 0, 0) >> 7 and (enc >> 3) & 0xF <= 7


def sanitised_id_reg(vcpu: "Vcpu", enc: int) -> int:
    """read_sanitised_id_reg: the PE's value as KVM shows it to a guest (no EL2 without NV)."""
    value = vcpu.cpu.state.sr.get(enc, 0)
    if enc == ID_AA64PFR0_EL1:
        value &= ~ID_AA64PFR0_EL1_EL2_MASK
    return value


def _access_id_reg(vcpu: "Vcpu", enc: int, is_write: bool, value: int) -> int | None:
    if is_write:
        return None
    return sanitised_id_reg(vcpu, enc)


def _access_actlr(vcpu: "Vcpu", enc: int, is_write: bool, value: int) -> int | None:
    """access_actlr: reads the vcpu's ACTLR_EL1, writes are ignored."""
    return 0 if is_write else vcpu.cpu.state.sr.get(ACTLR_EL1, 0)


def _access_debug_reg(vcpu: "Vcpu", enc: int, is_write: bool, value: int) -> int | None:
    """Debug registers hit the guest's own copy, never the debugger's (trap_debug_regs)."""
    if is_write:
        vcpu.debug.guest_write(enc, value)
        return 0
    return vcpu.debug.guest_read(enc)


def _access_oslar(vcpu: "Vcpu", enc: int, is_write: bool, value: int) -> int | None:
    """trap_oslar_el1: OSLAR_EL1.OSLK sets/clears OSLSR_EL1.OSLK; OSLAR is write-only."""
    if not is_write:
        return None
    oslsr = vcpu.debug.guest_read(OSLSR_EL1)
    oslsr = (oslsr | OSLSR_EL1_OSLK) if value & 1 else (oslsr & ~OSLSR_EL1_OSLK)
    vcpu.debug.guest_write(OSLSR_EL1, oslsr)
    return 0


def _access_oslsr(vcpu: "Vcpu", enc: int, is_write: bool, value: int) -> int | None:
    """trap_oslsr_el1: read-only."""
    return None if is_write else vcpu.debug.guest_read(OSLSR_EL1)


def _access_raz_wi(vcpu: "Vcpu", enc: int, is_write: bool, value: int) -> int | None:
    return 0


def _access_storage(vcpu: "Vcpu", enc: int, is_write: bool, value: int) -> int | None:
    sr = vcpu.cpu.state.sr
    if is_write:
        sr[enc] = value
        return 0
    return sr.get(enc, 0)


def _access_dcsw(vcpu: "Vcpu", enc: int, is_write: bool, value: int) -> int | None:
    """access_dcsw: set/way maintenance is meaningless to a guest; KVM makes it a no-op."""
    return 0 if is_write else None


def _access_icc(vcpu: "Vcpu", enc: int, is_write: bool, value: int) -> int | None:
    """The GICv3 CPU interface (vgic-sys-reg-v3.c) when the VM has a vGICv3. Without one the
    System register interface is disabled, as for a GICv2 guest on GICv3 hardware:
    ICC_SRE_EL1 reads 0 (writes ignored) and every other ICC register is UNDEFINED."""
    vgic = vcpu.vm.vgic
    name = SYSREGS[enc].name
    if isinstance(vgic, VgicV3):
        accessor = ICC_ACCESSORS.get(name)
        return None if accessor is None else accessor(vgic, vgic.index_of(vcpu), is_write, value)
    return 0 if name == "ICC_SRE_EL1" else None


def _table() -> dict[int, Accessor]:
    table: dict[int, Accessor] = {}
    for enc, desc in SYSREGS.items():
        if desc.trap in ID_REG_TRAPS:
            table[enc] = _access_id_reg
        elif desc.trap in ICC_TRAP_GROUPS:
            table[enc] = _access_icc
    for n in range(NUM_BRPS):
        table[DBGBCR[n]] = table[DBGBVR[n]] = _access_debug_reg
    for n in range(NUM_WRPS):
        table[DBGWCR[n]] = table[DBGWVR[n]] = _access_debug_reg
    table.update({
        MDSCR_EL1: _access_debug_reg,
        ACTLR_EL1: _access_actlr,
        OSLAR_EL1: _access_oslar,
        OSLSR_EL1: _access_oslsr,
        OSDLR_EL1: _access_storage,
        DBGPRCR_EL1: _access_storage,
        MDRAR_EL1: _access_raz_wi,
        sys_reg(1, 0, 7, 6, 2): _access_dcsw,   # DC ISW
        sys_reg(1, 0, 7, 10, 2): _access_dcsw,  # DC CSW
        sys_reg(1, 0, 7, 14, 2): _access_dcsw,  # DC CISW
    })
    return table


SYS_REG_ACCESSORS: dict[int, Accessor] = _table()


def kvm_handle_sys_reg(vcpu: "Vcpu", esr: int) -> int:
    """Emulate the trapped MRS/MSR/SYS described by the ISS, or inject UNDEFINED."""
    op0, op2, op1 = (esr >> 20) & 3, (esr >> 17) & 7, (esr >> 14) & 7
    crn, rt, crm, is_read = (esr >> 10) & 0xF, (esr >> 5) & 0x1F, (esr >> 1) & 0xF, bool(esr & 1)
    enc = sys_reg(op0, op1, crn, crm, op2)
    accessor = SYS_REG_ACCESSORS.get(enc)
    if accessor is None and _is_id_space(enc):
        accessor = _access_id_reg  # unallocated ID space reads as zero
    x = vcpu.cpu.state.x
    result = None if accessor is None else accessor(vcpu, enc, not is_read, x[rt])
    vcpu.stat_sysreg()
    if result is None:
        kvm_inject_undefined(vcpu.cpu.state)
        return RESUME
    if is_read and rt != 31:
        x[rt] = result
    vcpu.kvm_incr_pc()
    return RESUME
