"""Differential execution against Unicorn (PyPI ``unicorn``, ARM64 mode) as the outside truth.

Both machines get the same RAM image (code at ``CODE``, a data window at ``DATA``), the same
X0-X30, SP, PC and NZCV, at EL1h with the MMU off. :func:`check_stream` single-steps both and
compares all X registers, SP, PC, NZCV and the data window after every instruction; it stops at
the first exception, asserting that both took one (and, for UNDEFINED, that armvisor reports
EC 0x00).

Unicorn does not check alignment with the MMU off (QEMU's TCG, which it is built on, does only
in newer versions); tests keep data addresses aligned and test alignment faults separately.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from unicorn import UC_ARCH_ARM64, UC_MODE_ARM, Uc, UcError
from unicorn import arm64_const as A

from armvisor.arch.sysregs import ESR_EL1, VBAR_EL1
from armvisor.cpu import Budget, Cpu, PhysicalMemory

RAM = 0x4000_0000
RAM_SIZE = 0x1_0000
CODE = RAM
DATA = RAM + 0x8000
DATA_SIZE = 0x1000
VBAR = RAM + 0x4000  # armvisor's vectors: never executed in a comparison

_X_REGS = [getattr(A, f"UC_ARM64_REG_X{i}") for i in range(29)] + [A.UC_ARM64_REG_X29, A.UC_ARM64_REG_X30]


@dataclass
class MachineState:
    x: list[int]
    sp: int
    pc: int
    nzcv: int
    data: bytes = field(repr=False)

    def diff(self, other: "MachineState") -> list[str]:
        out = [f"x{i}: {a:#x} != {b:#x}" for i, (a, b) in enumerate(zip(self.x, other.x)) if a != b]
        for name in ("sp", "pc", "nzcv"):
            a, b = getattr(self, name), getattr(other, name)
            if a != b:
                out.append(f"{name}: {a:#x} != {b:#x}")
        if self.data != other.data:
            first = next(i for i in range(len(self.data)) if self.data[i] != other.data[i])
            out.append(f"data differs first at {DATA + first:#x}: "
                       f"{self.data[first:first + 8].hex()} != {other.data[first:first + 8].hex()}")
        return out


class Pair:
    """armvisor and Unicorn set up identically."""

    def __init__(self, words: list[int], x: list[int] | None = None, sp: int = DATA + DATA_SIZE,
                 nzcv: int = 0, data: bytes = b"", cpu_model: int = A.UC_CPU_ARM64_A57) -> None:
        x = list(x or []) + [0] * (31 - len(x or []))
        code = b"".join(struct.pack("<I", w) for w in words)
        image = bytearray(RAM_SIZE)
        image[0:len(code)] = code
        image[DATA - RAM:DATA - RAM + len(data)] = data

        self.uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        self.uc.ctl_set_cpu_model(cpu_model)
        self.uc.mem_map(RAM, RAM_SIZE)
        self.uc.mem_write(RAM, bytes(image))
        for reg, value in zip(_X_REGS, x):
            self.uc.reg_write(reg, value)
        self.uc.reg_write(A.UC_ARM64_REG_SP, sp)
        self.uc.reg_write(A.UC_ARM64_REG_NZCV, nzcv << 28)
        self.uc.reg_write(A.UC_ARM64_REG_PC, CODE)
        self.uc_exception: int | None = None
        self.uc.hook_add(__import__("unicorn").UC_HOOK_INTR, self._on_intr)

        phys = PhysicalMemory()
        phys.add_ram(RAM, image)
        self.cpu = Cpu(phys)
        s = self.cpu.state
        s.x[:31] = x
        s.sp = sp
        s.nzcv = nzcv
        s.pc = CODE
        s.sr[VBAR_EL1] = VBAR
        self.n_words = len(words)

    def _on_intr(self, uc: Uc, intno: int, _user) -> None:
        self.uc_exception = intno
        uc.emu_stop()

    def unicorn_state(self) -> MachineState:
        uc = self.uc
        return MachineState([uc.reg_read(r) for r in _X_REGS], uc.reg_read(A.UC_ARM64_REG_SP),
                            uc.reg_read(A.UC_ARM64_REG_PC), uc.reg_read(A.UC_ARM64_REG_NZCV) >> 28,
                            bytes(uc.mem_read(DATA, DATA_SIZE)))

    def armvisor_state(self) -> MachineState:
        s = self.cpu.state
        return MachineState(list(s.x[:31]), s.sp, s.pc, s.nzcv, self.cpu.phys.read(DATA, DATA_SIZE))

    def step(self) -> bool:
        """Step both; returns False once an exception was taken (comparison ends there)."""
        pc = self.uc.reg_read(A.UC_ARM64_REG_PC)
        try:
            self.uc.emu_start(pc, RAM + RAM_SIZE, count=1)
        except UcError as err:
            self.uc_exception = -1 if self.uc_exception is None else self.uc_exception
            self.uc_error = err
        stop = self.cpu.run(1)
        assert isinstance(stop, Budget), f"armvisor stopped to EL2 at {pc:#x}: {stop}"
        took = self.cpu.state.pc in {VBAR + off for off in (0, 0x200, 0x400, 0x600)}
        if self.uc_exception is not None or took:
            assert took and self.uc_exception is not None, (
                f"at {pc:#x} only {'armvisor' if took else 'unicorn'} took an exception "
                f"(unicorn intno={self.uc_exception})")
            return False
        return True


def check_stream(words: list[int], **kwargs) -> Pair:
    """Run ``words`` on both machines one instruction at a time, asserting equal state."""
    pair = Pair(words, **kwargs)
    for i in range(len(words)):
        pc = pair.cpu.state.pc
        if not CODE <= pc < CODE + 4 * len(words):
            break  # a branch left the stream
        insn = words[(pc - CODE) // 4]
        if not pair.step():
            if pair.uc_exception == 1:  # EXCP_UDEF
                assert pair.cpu.state.sr[ESR_EL1] >> 26 == 0, f"UNDEFINED {insn:#010x}: EC differs"
            break
        diff = pair.armvisor_state().diff(pair.unicorn_state())
        assert not diff, f"after {insn:#010x} at {pc:#x}: " + "; ".join(diff)
    return pair
