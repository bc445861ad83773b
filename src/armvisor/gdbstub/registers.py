"""gdb's aarch64 register file over ONE_REG, and its target description.

gdb numbers the registers of ``org.gnu.gdb.aarch64.core`` in document order: x0-x30 = 0-30,
sp = 31, pc = 32, cpsr = 33 (32-bit); values travel as little-endian hex. ``sp`` is the stack
pointer selected by PSTATE (SP_EL0 at EL0 or with SPSel = 0, else SP_EL1), as QEMU's
``aarch64_cpu_gdb_read_register`` shows ``xregs[31]``. armvisor has no FP/SIMD yet, so there is
no ``org.gnu.gdb.aarch64.fpu`` feature.
"""

from __future__ import annotations

from dataclasses import dataclass

from armvisor import kvm as K
from armvisor.arch.pstate import PSR_MODE_MASK

REG_SP = 31
REG_PC = 32
REG_CPSR = 33
NUM_REGS = 34


@dataclass(frozen=True)
class GdbRegister:
    name: str
    bitsize: int
    type: str

    @property
    def size(self) -> int:
        return self.bitsize // 8


REGISTERS: tuple[GdbRegister, ...] = (
    *(GdbRegister(f"x{n}", 64, "int") for n in range(31)),
    GdbRegister("sp", 64, "data_ptr"),
    GdbRegister("pc", 64, "code_ptr"),
    GdbRegister("cpsr", 32, "cpsr_flags"),
)

# PSTATE fields armvisor models (Arm ARM C5.2.18), as gdb's own aarch64-core.xml names them.
CPSR_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("SP", 0, 0), ("EL", 2, 3), ("nRW", 4, 4), ("F", 6, 6), ("I", 7, 7), ("A", 8, 8),
    ("D", 9, 9), ("IL", 20, 20), ("SS", 21, 21), ("V", 28, 28), ("C", 29, 29), ("Z", 30, 30),
    ("N", 31, 31),
)


def target_xml() -> bytes:
    """The target description (gdb manual, appendix G "Target Descriptions")."""
    fields = "".join(f'<field name="{n}" start="{s}" end="{e}"/>' for n, s, e in CPSR_FIELDS)
    regs = "".join(f'<reg name="{r.name}" bitsize="{r.bitsize}" type="{r.type}"/>' for r in REGISTERS)
    return ('<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">'
            '<target version="1.0"><architecture>aarch64</architecture>'
            '<feature name="org.gnu.gdb.aarch64.core">'
            f'<flags id="cpsr_flags" size="4">{fields}</flags>{regs}'
            '</feature></target>').encode()


def _sp_reg(pstate: int) -> int:
    """ONE_REG id of the SP in use: SPSel (M[0]) selects SP_ELx at EL1, EL0 always uses SP_EL0."""
    el = (pstate & PSR_MODE_MASK) >> 2
    return K.KVM_REG_ARM64_SP_EL1 if el and pstate & 1 else K.KVM_REG_ARM64_SP


def one_reg_id(vcpu: K.Vcpu, regnum: int) -> int:
    if regnum < 31:
        return K.arm64_core_x(regnum)
    if regnum == REG_SP:
        return _sp_reg(vcpu.get_one_reg(K.KVM_REG_ARM64_PSTATE))
    if regnum == REG_PC:
        return K.KVM_REG_ARM64_PC
    return K.KVM_REG_ARM64_PSTATE


def read_register(vcpu: K.Vcpu, regnum: int) -> bytes:
    value = vcpu.get_one_reg(one_reg_id(vcpu, regnum))
    size = REGISTERS[regnum].size
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def write_register(vcpu: K.Vcpu, regnum: int, data: bytes) -> None:
    """Write one register; cpsr keeps the upper 32 bits of PSTATE. Raises KvmError if KVM
    refuses the value (e.g. a PSTATE mode the vcpu cannot take)."""
    value = int.from_bytes(data, "little")
    reg = one_reg_id(vcpu, regnum)
    if regnum == REG_CPSR:
        value |= vcpu.get_one_reg(reg) & ~0xFFFF_FFFF
    vcpu.set_one_reg(reg, value)


def expedite(vcpu: K.Vcpu) -> bytes:
    """Every register as ``n:value;`` pairs of a stop reply (value as in ``g``)."""
    return b"".join(b"%02x:%s;" % (n, read_register(vcpu, n).hex().encode()) for n in range(NUM_REGS))


def read_all(vcpu: K.Vcpu) -> bytes:
    return b"".join(read_register(vcpu, n) for n in range(NUM_REGS))


def write_all(vcpu: K.Vcpu, data: bytes) -> None:
    """``G``: cpsr first, so that ``sp`` lands in the stack pointer the new PSTATE selects."""
    offsets = []
    pos = 0
    for reg in REGISTERS:
        offsets.append(pos)
        pos += reg.size
    if len(data) != pos:
        raise ValueError(f"G needs {pos} bytes of registers, got {len(data)}")
    order = (REG_CPSR, *range(REG_CPSR))
    for n in order:
        write_register(vcpu, n, data[offsets[n]:offsets[n] + REGISTERS[n].size])
