"""The guest debugging itself, as KVM's selftest debug-exceptions.c does (kvm-semantics.md
§10.1 part A): with no userspace debugging, BRK, hardware breakpoints (also on SVC and BRK),
watchpoints, self-step, the OS Lock and linked Context-ID breakpoints/watchpoints all reach the
guest's own EL1 vectors with the syndromes and addresses the Arm ARM specifies (D2.8-D2.12).

The guest logs (EC, ELR, FAR) of every exception it takes; its handler applies the selftest's
actions: BRK -> ELR += 4, breakpoint/watchpoint -> SPSR.D = 1, step -> SPSR.SS = 1.
"""

from __future__ import annotations

from support.guest import RAM, make_guest

from armvisor import kvm as K

GUEST = r"""
    .macro reset_debug
    msr daifset, #8
    msr osdlr_el1, xzr
    msr oslar_el1, xzr
    isb
    msr mdscr_el1, xzr
    msr dbgbvr0_el1, xzr
    msr dbgbcr0_el1, xzr
    msr dbgwcr0_el1, xzr
    msr dbgwvr0_el1, xzr
    msr dbgbcr4_el1, xzr
    msr dbgbvr4_el1, xzr
    msr contextidr_el1, xzr
    isb
    .endm
    .macro enable_mde_kde
    msr daifclr, #8
    mrs x0, mdscr_el1
    orr x0, x0, #(1 << 13)
    orr x0, x0, #(1 << 15)
    msr mdscr_el1, x0
    isb
    .endm
    .macro install_hw_bp label, bcr=0x1fe3
    adr x0, \label
    msr dbgbvr0_el1, x0
    ldr x0, =\bcr
    msr dbgbcr0_el1, x0
    isb
    enable_mde_kde
    .endm
    .macro install_wp wcr=0x1ffb
    adr x0, write_data
    msr dbgwvr0_el1, x0
    ldr x0, =\wcr
    msr dbgwcr0_el1, x0
    isb
    enable_mde_kde
    .endm
    .macro install_ss
    msr daifclr, #8
    mrs x0, mdscr_el1
    orr x0, x0, #(1 << 13)
    orr x0, x0, #1
    msr mdscr_el1, x0
    isb
    .endm
    .macro enable_os_lock
    mov x0, #1
    msr oslar_el1, x0
    isb
    .endm
    .macro mark n
    mov x0, #\n
    bl record_mark
    .endm
    .macro log_entry                   // append (x10, x11, x12) to the log; uses x9, x13, x14
    adr x9, log_idx
    ldr x13, [x9]
    add x14, x13, #1
    str x14, [x9]
    adr x9, log
    mov x14, #24
    madd x9, x13, x14, x9
    stp x10, x11, [x9]
    str x12, [x9, #16]
    .endm
    .macro install_ctx_bp
    ldr x0, =0xabcdef
    msr dbgbvr4_el1, x0
    ldr x0, =0x301fe3          // BT=0b0011 linked Context-ID, BAS all, EL1, E
    msr dbgbcr4_el1, x0
    isb
    .endm

start:
    adr x0, vectors
    msr vbar_el1, x0
    isb
    reset_debug
    mark 1
sw_bp: brk #0
    reset_debug
    mark 2
    install_hw_bp hw_bp
hw_bp: nop
    reset_debug
    mark 3
    install_hw_bp bp_svc
bp_svc: svc #0
    reset_debug
    mark 4
    install_hw_bp bp_brk
bp_brk: brk #0
    reset_debug
    mark 5
    install_wp
    adr x1, write_data
    mov w0, #'x'
wp_store: strb w0, [x1]
    reset_debug
    mark 6
    install_ss
ss_start:
    mrs x0, esr_el1
    add x0, x0, #1
    msr daifset, #8
    reset_debug
    mark 7
    enable_os_lock
sw_bp2: brk #0
    reset_debug
    mark 8
    enable_os_lock
    install_hw_bp hw_bp2
hw_bp2: nop
    reset_debug
    mark 9
    enable_os_lock
    install_wp
    adr x1, write_data2
    adr x2, write_data
    mov w0, #'y'
    strb w0, [x2]
    reset_debug
    mark 10
    enable_os_lock
    install_ss
    mrs x0, esr_el1
    add x0, x0, #1
    msr daifset, #8
    reset_debug
    mark 11
    install_ctx_bp
    install_hw_bp ctx_bp, 0x141fe3     // BT=0b0001 linked address, LBN=4
ctx_bp_miss: nop                       // CONTEXTIDR does not match yet: no breakpoint
    ldr x0, =0xabcdef
    msr contextidr_el1, x0
    isb
    b ctx_bp
    nop
ctx_bp: nop
    reset_debug
    mark 12
    install_ctx_bp
    ldr x0, =0xabcdef
    msr contextidr_el1, x0
    isb
    install_wp 0x141ffb                // WT=1 linked to context breakpoint 4
    adr x1, write_data
    mov w0, #'z'
ctx_wp_store: strb w0, [x1]
    reset_debug
    mark 13
    ldr x0, =0x84000008
    hvc #0

record_mark:                           // log (0xFF, n, 0)
    mov x10, #0xff
    mov x11, x0
    mov x12, xzr
    log_entry
    ret

handler:
    mrs x10, esr_el1
    lsr x10, x10, #26
    mrs x11, elr_el1
    mrs x12, far_el1
    cmp x10, #0x35
    csel x12, x12, xzr, eq
    log_entry
    cmp x10, #0x3c
    b.ne 1f
    mrs x11, elr_el1
    add x11, x11, #4
    msr elr_el1, x11
    eret
1:  cmp x10, #0x33
    b.ne 2f
    mrs x11, spsr_el1
    orr x11, x11, #(1 << 21)
    msr spsr_el1, x11
    eret
2:  cmp x10, #0x15
    b.eq 3f
    mrs x11, spsr_el1
    orr x11, x11, #(1 << 9)
    msr spsr_el1, x11
3:  eret
    .ltorg

    .balign 8
write_data: .quad 0
write_data2: .quad 0
log_idx: .quad 0
log: .fill 64 * 3, 8, 0

    .balign 2048
vectors:
    .fill 128, 4, 0xd4207fe0           // unexpected vector: brk #0x3ff
    b handler
    .fill 127, 4, 0xd4207fe0
    .fill 256, 4, 0xd4207fe0
"""


def symbol_offsets() -> dict[str, int]:
    """Offsets of the labels, from the assembler's own symbol table."""
    import subprocess
    import tempfile
    from pathlib import Path

    from armvisor.toolchain import tool

    with tempfile.TemporaryDirectory() as tmp:
        src, obj = Path(tmp) / "g.s", Path(tmp) / "g.o"
        src.write_text(GUEST)
        subprocess.run([tool("as"), "-o", str(obj), str(src)], check=True)
        out = subprocess.run([tool("nm"), str(obj)], capture_output=True, text=True,
                             check=True).stdout
    return {name: int(addr, 16) for addr, _kind, name in (line.split() for line in out.splitlines())}


def test_guest_debugs_itself() -> None:
    vm, vcpu = make_guest(GUEST)
    run = vcpu.run(max_insns=100_000)
    assert run.exit_reason == K.KVM_EXIT_SYSTEM_EVENT, f"guest stopped at {vcpu.cpu.state.pc:#x}"
    sym = {k: RAM + v for k, v in symbol_offsets().items()}
    count = int.from_bytes(vm.phys.read(sym["log_idx"], 8), "little")
    raw = vm.phys.read(sym["log"], count * 24)
    log = [tuple(int.from_bytes(raw[i + 8 * k:i + 8 * k + 8], "little") for k in range(3))
           for i in range(0, len(raw), 24)]
    byte = lambda name: vm.phys.read(sym[name], 1)[0]  # noqa: E731
    assert log == [
        (0xFF, 1, 0), (0x3C, sym["sw_bp"], 0),
        (0xFF, 2, 0), (0x31, sym["hw_bp"], 0),
        (0xFF, 3, 0), (0x31, sym["bp_svc"], 0), (0x15, sym["bp_svc"] + 4, 0),
        (0xFF, 4, 0), (0x31, sym["bp_brk"], 0), (0x3C, sym["bp_brk"], 0),
        (0xFF, 5, 0), (0x35, sym["wp_store"], sym["write_data"]),
        (0xFF, 6, 0), (0x33, sym["ss_start"], 0), (0x33, sym["ss_start"] + 4, 0),
        (0x33, sym["ss_start"] + 8, 0),
        (0xFF, 7, 0), (0x3C, sym["sw_bp2"], 0),   # the OS Lock does not block BRK
        (0xFF, 8, 0),                             # ... but blocks breakpoints,
        (0xFF, 9, 0),                             # watchpoints
        (0xFF, 10, 0),                            # and single-step
        (0xFF, 11, 0), (0x31, sym["ctx_bp"], 0),  # linked breakpoint: only once CONTEXTIDR matches
        (0xFF, 12, 0), (0x35, sym["ctx_wp_store"], sym["write_data"]),
        (0xFF, 13, 0),
    ]
    assert byte("write_data") == ord("z")  # each watched store completed after SPSR.D
