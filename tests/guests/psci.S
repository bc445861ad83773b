// PSCI 0.2 over HVC, the conduit of QEMU's virt board (and of KVM) for a guest booted at EL1.
// SMC Calling Convention: function ID in w0, arguments in x1-x3, result in x0.
    .equ PSCI_0_2_FN_SYSTEM_OFF,   0x84000008
    .equ PSCI_0_2_FN_SYSTEM_RESET, 0x84000009

    .text
    .global psci_call
    .type psci_call, %function
psci_call:                          // int64_t psci_call(function, arg1, arg2, arg3)
    hvc     #0
    ret

    .global psci_system_reset
    .type psci_system_reset, %function
psci_system_reset:
    ldr     w0, =PSCI_0_2_FN_SYSTEM_RESET
    b       1f

    .global psci_system_off
    .type psci_system_off, %function
psci_system_off:
    ldr     w0, =PSCI_0_2_FN_SYSTEM_OFF
1:  mov     x1, xzr
    mov     x2, xzr
    mov     x3, xzr
    hvc     #0
2:  wfi                             // not reached when PSCI works
    b       2b
    .ltorg
