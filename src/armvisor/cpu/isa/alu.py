"""Integer arithmetic shared by the data-processing groups (Arm ARM J1 shared pseudocode).

Decode-time helpers (DecodeBitMasks, register-field mapping) return plain ints; the operand
builders return small functions that ops call at run time with a register value; a few op
factories (``add_sub_flags``, ``use_sp``) serve both groups. ``write_index`` serves the
load/store groups too. Every value is an unsigned int of
the operation's width (32 or 64 bits).
"""

from __future__ import annotations

from collections.abc import Callable

from armvisor.cpu.decoder import Op
from armvisor.cpu.state import MASK32, MASK64, ZR_WRITE, CpuState

Operand = Callable[[int], int]

# ZR_WRITE only absorbs writes, so an op may borrow it to hold SP while it runs (see use_sp).
SCRATCH = ZR_WRITE

WIDTH_MASK = {32: MASK32, 64: MASK64}


def sf_fields(insn: int) -> tuple[int, int, int, int]:
    """(datasize, its mask, Rn, Rd) of a data-processing encoding (sf in bit 31)."""
    width = 64 if insn >> 31 else 32
    return width, WIDTH_MASK[width], (insn >> 5) & 31, insn & 31


def write_index(field: int) -> int:
    """The X index written for a register field where 31 means the zero register."""
    return ZR_WRITE if field == 31 else field


def use_sp(op: Op, x: list[int], rn_sp: bool, rd_sp: bool) -> Op:
    """Adapt ``op``, built with Rn and/or Rd at ``SCRATCH``, to read and/or write SP."""
    if not (rn_sp or rd_sp):
        return op
    if rn_sp and rd_sp:

        def sp_to_sp(s: CpuState) -> int:
            x[SCRATCH] = s.sp
            npc = op(s)
            s.sp = x[SCRATCH]
            return npc

        return sp_to_sp
    if rn_sp:

        def from_sp(s: CpuState) -> int:
            x[SCRATCH] = s.sp
            return op(s)

        return from_sp

    def to_sp(s: CpuState) -> int:
        npc = op(s)
        s.sp = x[SCRATCH]
        return npc

    return to_sp


def to_signed(value: int, width: int) -> int:
    """SInt() of a ``width``-bit unsigned value."""
    sign = 1 << (width - 1)
    return (value ^ sign) - sign


def ror(value: int, amount: int, width: int) -> int:
    """ROR() of a ``width``-bit value by ``amount`` (0 <= amount < width)."""
    return ((value >> amount) | (value << (width - amount))) & ((1 << width) - 1)


def replicate(value: int, esize: int, width: int) -> int:
    """Replicate() an ``esize``-bit element to fill ``width`` bits."""
    return value * (((1 << width) - 1) // ((1 << esize) - 1))


def decode_bit_masks(n: int, imms: int, immr: int, immediate: bool, width: int) -> tuple[int, int] | None:
    """DecodeBitMasks() (Arm ARM J1.3): (wmask, tmask), or None where the encoding is
    reserved (UNDEFINED)."""
    length = ((n << 6) | (~imms & 0x3F)).bit_length() - 1
    if length < 1:
        return None
    levels = (1 << length) - 1
    s = imms & levels
    r = immr & levels
    if immediate and s == levels:
        return None
    esize = 1 << length
    welem = (1 << (s + 1)) - 1
    telem = (1 << (((s - r) & levels) + 1)) - 1
    return replicate(ror(welem, r, esize), esize, width), replicate(telem, esize, width)


def add_with_carry(x: int, y: int, carry_in: int, width: int) -> tuple[int, int]:
    """AddWithCarry() (Arm ARM J1.1): (result, nzcv) of ``width``-bit x + y + carry_in."""
    total = x + y + carry_in
    top = width - 1
    result = total & ((1 << width) - 1)
    nzcv = (
        ((result >> top) << 3)
        | (0 if result else 4)
        | (((total >> width) & 1) << 1)
        | (((x ^ result) & (y ^ result)) >> top)
    )
    return result, nzcv


def add_sub_flags(x: list[int], d: int, n: int, source: list[int] | tuple[int], m: int, sub: int,
                  width: int, npc: int) -> Op:
    """ADDS/SUBS of Rn and source[m] (a register, or an immediate in a 1-tuple): AddWithCarry
    specialised for speed (for SUBS, C is NOT borrow and V is signed overflow of Rn - Rm)."""
    mask = WIDTH_MASK[width]
    top = width - 1
    n_shift = width - 4
    if sub:

        def subs(s: CpuState) -> int:
            a = x[n] & mask
            b = source[m] & mask
            r = (a - b) & mask
            x[d] = r
            s.nzcv = ((r >> n_shift) & 8) | (0 if r else 4) | (2 if a >= b else 0) | (
                ((a ^ b) & (a ^ r)) >> top)
            return npc

        return subs

    def adds(s: CpuState) -> int:
        a = x[n] & mask
        b = source[m] & mask
        total = a + b
        r = total & mask
        x[d] = r
        s.nzcv = ((r >> n_shift) & 8) | (0 if r else 4) | (2 if total > mask else 0) | (
            ((a ^ r) & (b ^ r)) >> top)
        return npc

    return adds


# -- shifted and extended register operands (Arm ARM J1.3 ShiftReg, ExtendReg) ---------------

def _lsl(amount: int, width: int) -> Operand:
    mask = WIDTH_MASK[width]
    return lambda v: (v << amount) & mask


def _lsr(amount: int, width: int) -> Operand:
    mask = WIDTH_MASK[width]
    return lambda v: (v & mask) >> amount


def _asr(amount: int, width: int) -> Operand:
    mask = WIDTH_MASK[width]
    sign = 1 << (width - 1)
    return lambda v: ((((v & mask) ^ sign) - sign) >> amount) & mask


def _ror(amount: int, width: int) -> Operand:
    mask = WIDTH_MASK[width]
    back = width - amount
    return lambda v: (((v & mask) >> amount) | (v << back)) & mask


# Indexed by the shift type field (Arm ARM J1.3 DecodeShift: LSL, LSR, ASR, ROR).
_SHIFTS: tuple[Callable[[int, int], Operand], ...] = (_lsl, _lsr, _asr, _ror)


def shift_operand(shift_type: int, amount: int, width: int) -> Operand:
    """ShiftReg(): the ``width``-bit operand of a shifted-register form (0 <= amount < width)."""
    if amount == 0:
        return WIDTH_MASK[width].__and__
    return _SHIFTS[shift_type](amount, width)


def extend_operand(option: int, shift: int, width: int) -> Operand:
    """ExtendReg(): UXTB..SXTX (``option``) of a register, then LSL ``shift`` (0..4)."""
    mask = WIDTH_MASK[width]
    field = (1 << (8 << (option & 3))) - 1
    sign = (field + 1) >> 1 if option & 4 else 0
    return lambda v: ((((v & field) ^ sign) - sign) << shift) & mask


# -- data-processing (1 source) (Arm ARM C6.2 RBIT, REV*, CLZ, CLS) -------------------------

_BIT_REVERSED_BYTES = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def reverse_bits(width: int) -> Operand:
    """RBIT: the bits of a ``width``-bit value in reverse order."""
    size = width // 8
    return lambda v: int.from_bytes(v.to_bytes(size, "little").translate(_BIT_REVERSED_BYTES), "big")


def reverse_bytes(container: int, width: int) -> Operand:
    """REV16/REV32/REV: reverse the bytes inside every ``container``-bit container."""
    size = width // 8
    if container == width:
        return lambda v: int.from_bytes(v.to_bytes(size, "little"), "big")
    # Swap adjacent 8-bit, then 16-bit, ... lanes up to half a container.
    steps = []
    lane = 8
    while lane < container:
        steps.append((replicate((1 << lane) - 1, 2 * lane, width), lane))
        lane *= 2

    def reverse(v: int) -> int:
        for low, step in steps:
            v = ((v & low) << step) | ((v >> step) & low)
        return v

    return reverse


def count_leading_zeros(width: int) -> Operand:
    """CountLeadingZeroBits() of a ``width``-bit value."""
    return lambda v: width - v.bit_length()


def count_leading_sign_bits(width: int) -> Operand:
    """CountLeadingSignBits(): CLZ of x<N-1:1> EOR x<N-2:0>."""
    low = WIDTH_MASK[width] >> 1
    return lambda v: width - 1 - ((v >> 1) ^ (v & low)).bit_length()


# -- data-processing (2 source) (Arm ARM C6.2 UDIV, SDIV, LSLV, LSRV, ASRV, RORV, CRC32*) ----
# Each factory takes the width and returns f(a, b) on width-bit operands, giving a width-bit
# result.

Binary = Callable[[int, int], int]


def udiv(width: int) -> Binary:
    """UDIV: unsigned quotient, 0 when dividing by zero."""
    return lambda a, b: a // b if b else 0


def sdiv(width: int) -> Binary:
    """SDIV: quotient rounded towards zero, 0 when dividing by zero; INT_MIN / -1 wraps."""
    mask = WIDTH_MASK[width]

    def divide(a: int, b: int) -> int:
        if not b:
            return 0
        a = to_signed(a, width)
        b = to_signed(b, width)
        q = abs(a) // abs(b)
        return (-q if (a < 0) != (b < 0) else q) & mask

    return divide


def lslv(width: int) -> Binary:
    """LSLV: shift left by Rm modulo the width."""
    mask = WIDTH_MASK[width]
    modulo = width - 1
    return lambda a, b: (a << (b & modulo)) & mask


def lsrv(width: int) -> Binary:
    """LSRV: logical shift right by Rm modulo the width."""
    modulo = width - 1
    return lambda a, b: a >> (b & modulo)


def asrv(width: int) -> Binary:
    """ASRV: arithmetic shift right by Rm modulo the width."""
    mask = WIDTH_MASK[width]
    sign = 1 << (width - 1)
    modulo = width - 1
    return lambda a, b: (((a ^ sign) - sign) >> (b & modulo)) & mask


def rorv(width: int) -> Binary:
    """RORV: rotate right by Rm modulo the width."""
    modulo = width - 1
    return lambda a, b: ror(a, b & modulo, width)


def _crc_table(poly: int) -> tuple[int, ...]:
    """Byte-at-a-time table for a bit-reflected CRC-32 polynomial."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (poly if crc & 1 else 0)
        table.append(crc)
    return tuple(table)


CRC32_TABLE = _crc_table(0xEDB88320)  # 0x04C11DB7 reflected
CRC32C_TABLE = _crc_table(0x82F63B78)  # 0x1EDC6F41 reflected


def crc32(table: tuple[int, ...], size: int) -> Binary:
    """CRC32*/CRC32C* (Arm ARM C6.2): accumulate the low ``size`` bytes of b into CRC a,
    without the pre- and post-inversion of zlib's crc32()."""

    def update(a: int, b: int) -> int:
        crc = a & MASK32
        for byte in (b & ((1 << (8 * size)) - 1)).to_bytes(size, "little"):
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        return crc

    return update
