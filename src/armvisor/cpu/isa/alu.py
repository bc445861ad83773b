"""Integer arithmetic shared by the data-processing groups (Arm ARM J1 shared pseudocode).

Decode-time helpers (DecodeBitMasks, register-field mapping, condition masks) return plain
ints; the source helpers return constant snippets of emitter text (see :mod:`armvisor.cpu.emit`)
for AddWithCarry, ShiftReg and ExtendReg, with ``{name}`` placeholders the emitters fill in
through their constants. ``write_index`` serves the load/store groups too. Every value is an
unsigned int of the operation's width (32 or 64 bits).
"""

from __future__ import annotations

from armvisor.arch.pstate import CONDITION_TABLE
from armvisor.cpu.state import MASK32, MASK64, ZR_WRITE

WIDTH_MASK = {32: MASK32, 64: MASK64}


def sf_fields(insn: int) -> tuple[int, int, int, int]:
    """(datasize, its mask, Rn, Rd) of a data-processing encoding (sf in bit 31)."""
    width = 64 if insn >> 31 else 32
    return width, WIDTH_MASK[width], (insn >> 5) & 31, insn & 31


def write_index(field: int) -> int:
    """The X index written for a register field where 31 means the zero register."""
    return ZR_WRITE if field == 31 else field


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




def condition_mask(cond: int) -> int:
    """ConditionHolds() (Arm ARM J1.3) as a 16-bit mask: bit NZCV set for each flag value that
    satisfies ``cond``, so the text ``{holds} >> s.nzcv & 1`` tests it."""
    return sum(1 << nzcv for nzcv, ok in enumerate(CONDITION_TABLE[cond]) if ok)


# -- source snippets (constants; placeholders: mask = the width's mask, top = width - 1) -------

# N and Z of the result r_, C and V clear: the flags of ANDS and BICS.
NZ_FLAGS = "s.nzcv = r_ >> {top} << 3 | (0 if r_ else 4)"

# AddWithCarry() (Arm ARM J1.1) of width-bit a_ and b_ with its flags, specialised: the sum
# t_ = a_ + b_ + carry_in, or the difference a_ - b_ (a_ + NOT b_ + 1: C is NOT borrow and V
# the signed overflow of a_ - b_).
_ADD_RESULT = "t_ = a_ + b_{carry}\nr_ = t_ & {{mask}}"
_ADD_FLAGS = ("s.nzcv = r_ >> {top} << 3 | (0 if r_ else 4) | (2 if t_ > {mask} else 0)"
              " | ((a_ ^ r_) & (b_ ^ r_)) >> {top}")
_SUB_RESULT = "r_ = (a_ - b_) & {mask}"
# The flags of a subtraction, from a_, b_ and r_ (the translator recognises this line: see
# armvisor.cpu.translate's compare fusion).
SUB_FLAGS = ("s.nzcv = r_ >> {top} << 3 | (0 if r_ else 4) | (2 if a_ >= b_ else 0)"
              " | ((a_ ^ b_) & (a_ ^ r_)) >> {top}")
# The carry-in term of an add: none, or PSTATE.C (ADCS, SBCS).
NO_CARRY = ""
CARRY_IN = " + (s.nzcv >> 1 & 1)"
_ADD_RESULTS = {carry: _ADD_RESULT.format(carry=carry) for carry in (NO_CARRY, CARRY_IN)}


def add_sub_flags_code(a: str, b: str, sub: bool, dest: str, carry: str = NO_CARRY) -> str:
    """Lines computing AddWithCarry() of the width-bit operand expressions ``a`` and ``b``
    (``a - b`` if ``sub``, else ``a + b`` plus ``carry``, NO_CARRY or CARRY_IN), writing the
    result to ``dest`` (no write if empty: CMP, CMN, CCMP) and the flags to ``s.nzcv``.
    Operands are read before anything is written, so ``dest`` may name an operand."""
    lines = ["a_ = " + a, "b_ = " + b]
    if sub:
        lines += [_SUB_RESULT, SUB_FLAGS]
    else:
        lines += [_ADD_RESULTS[carry], _ADD_FLAGS]
    if dest:
        lines.append(dest + " = r_")
    return "\n".join(lines)


def indent(code: str) -> str:
    """``code`` as the body of an ``if`` or ``else`` block."""
    return "    " + code.replace("\n", "\n    ")


# ShiftReg() (Arm ARM J1.3) of X[m] as a width-bit expression, by shift type (LSL, LSR, ASR,
# ROR), for 0 < amount < width; consts from shift_consts.
_SHIFTED = (
    "(x[{m}] << {amount} & {mask})",
    "((x[{m}] & {mask}) >> {amount})",
    "(((x[{m}] & {mask} ^ {sign}) - {sign}) >> {amount} & {mask})",
    "(((x[{m}] & {mask}) >> {amount} | x[{m}] << {back}) & {mask})",
)
UNSHIFTED = "(x[{m}] & {mask})"


def shifted_code(shift_type: int, amount: int, width: int) -> tuple[str, dict[str, int]]:
    """ShiftReg(): (expression, its constants other than m and mask) of the ``width``-bit
    shifted register operand X[m] (0 <= amount < width)."""
    if not amount:
        return UNSHIFTED, {}
    if shift_type == 2:
        return _SHIFTED[2], {"amount": amount, "sign": 1 << (width - 1)}
    if shift_type == 3:
        return _SHIFTED[3], {"amount": amount, "back": width - amount}
    return _SHIFTED[shift_type], {"amount": amount}


_EXTENDED_UNSIGNED = "((x[{m}] & {field}) << {shift} & {mask})"
_EXTENDED_SIGNED = "(((x[{m}] & {field} ^ {sign}) - {sign}) << {shift} & {mask})"


def extended_code(option: int, shift: int) -> tuple[str, dict[str, int]]:
    """ExtendReg(): (expression, its constants other than m and mask) of X[m] extended by
    UXTB..SXTX (``option``), then shifted left by ``shift`` (0..4), as a width-bit value."""
    field = (1 << (8 << (option & 3))) - 1
    if option & 4:
        return _EXTENDED_SIGNED, {"field": field, "shift": shift, "sign": (field + 1) >> 1}
    return _EXTENDED_UNSIGNED, {"field": field, "shift": shift}


# -- CRC32 (Arm ARM C6.2 CRC32*, CRC32C*) ---------------------------------------------------

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
