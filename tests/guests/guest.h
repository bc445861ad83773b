/* Runtime shared by the test guests: PL011 console and PSCI calls (see crt0.S, psci.S). */
#ifndef GUEST_H
#define GUEST_H

#include <stddef.h>
#include <stdint.h>

/* uart.c: PL011 UART0 of QEMU's virt board */
void uart_putc(char c);
void uart_puts(const char *s);
void uart_put_hex(uint64_t value, unsigned digits); /* "0x" and at least `digits` digits */
void uart_put_udec(uint64_t value);
void uart_put_dec(int64_t value);

/* psci.S: PSCI 0.2 calls over HVC */
int64_t psci_call(uint32_t function, uint64_t arg1, uint64_t arg2, uint64_t arg3);
void psci_system_off(void) __attribute__((noreturn));
void psci_system_reset(void) __attribute__((noreturn));

/* lib.c: what GCC may call even in freestanding code */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);

#endif
