"""Assembly snippets of GIC set-up and interrupt handling for test guests (GICv2 through its
memory-mapped CPU interface, GICv3 through the ICC_* System registers), each leaving the
Distributor base in x9 and the CPU interface (v2) or this vcpu's SGI_base frame (v3) in x10."""

from __future__ import annotations

MAIN = """
main:
    adr x0, vectors
    msr vbar_el1, x0            // the vector table of support.irq_guest.VECTORS
    mov x20, #0                 // interrupts counted by the handlers
"""

def gic_init(version: int, group: int = 1) -> str:
    """Enable the GIC for interrupts of ``group``: Group 1 as IRQs (GICv2: Group 0 with
    FIQEn=0, every interrupt's reset group), or Group 0 as FIQs (GICv2 FIQEn, GICv3 always)."""
    if version == 2:
        gicc_ctlr = 1 if group else 1 | 1 << 3  # EnableGrp0 (| FIQEn)
        return f"""
    movz x9, #0x0800, lsl #16
    movz x10, #0x0801, lsl #16
    mov w1, #3
    str w1, [x9]                // GICD_CTLR: Group 0 and 1
    mov w1, #0xff
    str w1, [x10, #4]           // GICC_PMR
    mov w1, #{gicc_ctlr}
    str w1, [x10]               // GICC_CTLR
"""
    return f"""
    movz x9, #0x0800, lsl #16
    mrs x1, mpidr_el1
    and x1, x1, #0xff
    movz x10, #0x080B, lsl #16  // GICR + SGI_base of redistributor 0
    add x10, x10, x1, lsl #17   // 128 KiB per redistributor
    sub x2, x10, #0x10, lsl #12
    str wzr, [x2, #0x14]        // GICR_WAKER (RD_base + 0x14): awake
    mov w1, #3
    str w1, [x9]                // GICD_CTLR: both groups (ARE is always on)
    mov w1, #{-1 if group else 0}
    str w1, [x10, #0x80]        // GICR_IGROUPR0: SGIs and PPIs in the group
    mov x1, #0xff
    msr icc_pmr_el1, x1
    mov x1, #1
    msr icc_igrpen{group}_el1, x1
"""


def ack(version: int, group: int = 1) -> str:
    """Acknowledge into w1/x1 (GICC_IAR, ICC_IARn_EL1)."""
    return "ldr w1, [x10, #0xc]" if version == 2 else f"mrs x1, icc_iar{group}_el1"


def eoi(version: int, group: int = 1) -> str:
    """End the interrupt in w1/x1 (GICC_EOIR, ICC_EOIRn_EL1)."""
    return "str w1, [x10, #0x10]" if version == 2 else f"msr icc_eoir{group}_el1, x1"


def enable_private(version: int, intid: int) -> str:
    """Set the enable bit of an SGI/PPI (GICD_ISENABLER0 banked, or GICR_ISENABLER0)."""
    reg = "x9, #0x100" if version == 2 else "x10, #0x100"
    return f"    movz w1, #{(1 << intid) >> 16}, lsl #16\n    movk w1, #{(1 << intid) & 0xFFFF}\n    str w1, [{reg}]\n"


def enable_spi(version: int, intid: int) -> str:
    """Enable an SPI (and put it in Group 1 for GICv3); its routing is the reset one (vcpu 0)."""
    word, bit = 4 * (intid // 32), 1 << (intid % 32)
    out = f"    movz w1, #{bit >> 16}, lsl #16\n    movk w1, #{bit & 0xFFFF}\n"
    if version == 3:
        out += f"    str w1, [x9, #{0x80 + word}]\n"
    return out + f"    str w1, [x9, #{0x100 + word}]\n"


def send_sgi(version: int, intid: int, target: int) -> str:
    """SGI ``intid`` to vcpu ``target`` (GICD_SGIR target list / ICC_SGI1R_EL1 Aff0 list)."""
    if version == 2:
        value = (1 << (16 + target)) | intid
        return f"    movz w1, #{value >> 16}, lsl #16\n    movk w1, #{value & 0xFFFF}\n    str w1, [x9, #0xf00]\n"
    value = (intid << 24) | (1 << target)
    return f"    movz x1, #{value >> 16}, lsl #16\n    movk x1, #{value & 0xFFFF}\n    msr icc_sgi1r_el1, x1\n"
