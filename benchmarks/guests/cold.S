// Cold straight-line code: main is ITERATIONS groups of four distinct data-processing
// instructions (immediates and shift amounts vary with the group index), each executed once,
// then prints x1 ^ x2 ^ x3. ITERATIONS=0 gives the same guest without the cold code.
#ifndef ITERATIONS
#define ITERATIONS 1024
#endif
    .text
    .global main
    .type main, %function
main:
    stp     x29, x30, [sp, #-16]!
    mov     x1, #1
    mov     x2, #2
    mov     x3, #3
    .set    group, 0
    .rept   ITERATIONS
    add     x1, x1, #(group % 4096)
    eor     x2, x2, x1, ror #(group % 63 + 1)
    sub     x3, x3, x2, lsl #(group % 61 + 1)
    eor     x1, x1, x3, lsr #(group % 59 + 1)
    .set    group, group + 1
    .endr
    eor     x1, x1, x2
    eor     x19, x1, x3
    adrp    x0, message
    add     x0, x0, :lo12:message
    bl      uart_puts
    mov     x0, x19
    mov     x1, #16
    bl      uart_put_hex
    mov     x0, #'\n'
    bl      uart_putc
    mov     x0, #0
    ldp     x29, x30, [sp], #16
    ret

    .section .rodata
message: .asciz "cold "
