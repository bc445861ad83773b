/* Polled PL011 output (ARM PrimeCell UART PL011 TRM, 3.3: UARTDR at 0x000, UARTFR at 0x018). */
#include "guest.h"

#define UART0_BASE 0x09000000UL
#define UARTDR 0x000
#define UARTFR 0x018
#define UARTFR_TXFF (1u << 5) /* transmit FIFO full */

static inline volatile uint32_t *uart_reg(unsigned offset)
{
    return (volatile uint32_t *)(UART0_BASE + offset);
}

void uart_putc(char c)
{
    while (*uart_reg(UARTFR) & UARTFR_TXFF)
        ;
    *uart_reg(UARTDR) = (uint8_t)c;
}

void uart_puts(const char *s)
{
    for (; *s; s++)
        uart_putc(*s);
}

void uart_put_hex(uint64_t value, unsigned digits)
{
    unsigned n = 1;
    while (n < 16 && value >> (4 * n))
        n++;
    if (n < digits)
        n = digits;
    uart_puts("0x");
    while (n--)
        uart_putc("0123456789abcdef"[(value >> (4 * n)) & 0xf]);
}

void uart_put_udec(uint64_t value)
{
    char digits[20];
    unsigned n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (n)
        uart_putc(digits[--n]);
}

void uart_put_dec(int64_t value)
{
    if (value < 0) {
        uart_putc('-');
        uart_put_udec(-(uint64_t)value);
    } else {
        uart_put_udec((uint64_t)value);
    }
}
