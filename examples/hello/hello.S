// A complete bare-metal guest in a few instructions: print a line on the PL011 UART of
// QEMU's virt board, then power off with PSCI SYSTEM_OFF over HVC.
//   armvisor run hello.elf        (or: qemu-system-aarch64 -M virt -cpu cortex-a57
//                                  -nographic -kernel hello.elf)
    .equ UART0_BASE, 0x09000000
    .equ UARTFR, 0x18                   // flag register
    .equ UARTFR_TXFF, 5                 // bit: transmit FIFO full
    .equ PSCI_0_2_FN_SYSTEM_OFF, 0x84000008

    .text
    .global _start
_start:
    ldr     x1, =UART0_BASE
    adr     x2, message
next_char:
    ldrb    w0, [x2], #1
    cbz     w0, power_off
wait_tx:
    ldr     w3, [x1, #UARTFR]
    tbnz    w3, #UARTFR_TXFF, wait_tx
    str     w0, [x1]                    // UARTDR
    b       next_char
power_off:
    ldr     w0, =PSCI_0_2_FN_SYSTEM_OFF
    hvc     #0
halt:
    wfi
    b       halt
    .ltorg

message:
    .asciz  "Hello from armvisor!\n"
