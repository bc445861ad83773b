// Guest entry: stack, exception vectors, .bss, main(), then PSCI SYSTEM_OFF.
// Any exception taken to EL1 is a bug: the vectors report ESR/ELR/FAR on the UART and reset
// the system (PSCI SYSTEM_RESET) so that the crash shows in both output and exit status.
    .section .text.boot, "ax"
    .global _start
    .type _start, %function
_start:
    ldr     x0, =__stack_top
    mov     sp, x0
    ldr     x0, =el1_vectors
    msr     vbar_el1, x0
    isb
    ldr     x0, =__bss_start
    ldr     x1, =__bss_end
1:  cmp     x0, x1
    b.hs    2f
    stp     xzr, xzr, [x0], #16     // the link script aligns .bss to 16 bytes
    b       1b
2:  bl      main
    b       psci_system_off

// Vector table (Arm ARM D1.10.2): 16 entries of 0x80 bytes, 2 KiB aligned. Each entry passes
// its index to the common reporter.
    .section .text.vectors, "ax"
    .balign 2048
    .global el1_vectors             // secondary CPUs install it too (smp.c)
el1_vectors:
    .irp index, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    .balign 128
    mov     x19, #\index
    b       el1_exception
    .endr

    .text
el1_exception:
    mrs     x20, esr_el1
    mrs     x21, elr_el1
    mrs     x22, far_el1
    ldr     x0, =__stack_top        // the stack may be what went wrong
    mov     sp, x0
    adr     x0, msg_vector
    bl      uart_puts
    mov     x0, x19
    bl      uart_put_udec
    adr     x0, msg_esr
    mov     x1, x20
    bl      put_field
    adr     x0, msg_elr
    mov     x1, x21
    bl      put_field
    adr     x0, msg_far
    mov     x1, x22
    bl      put_field
    mov     x0, #'\n'
    bl      uart_putc
    b       psci_system_reset

put_field:                          // puts(x0); put_hex(x1, 16)
    stp     x29, x30, [sp, #-32]!
    str     x1, [sp, #16]
    bl      uart_puts
    ldr     x0, [sp, #16]
    mov     x1, #16
    bl      uart_put_hex
    ldp     x29, x30, [sp], #32
    ret
    .ltorg

    .section .rodata
msg_vector: .asciz "\n*** guest exception: vector "
msg_esr:    .asciz " esr="
msg_elr:    .asciz " elr="
msg_far:    .asciz " far="
