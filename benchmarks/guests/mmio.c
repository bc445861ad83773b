/* MMIO: ITERATIONS characters written to the PL011 with uart_putc (each a read of UARTFR and a
 * write of UARTDR: two MMIO exits), lines of 64. */
#include "guest.h"

#ifndef ITERATIONS
#define ITERATIONS 1000
#endif

int main(void)
{
    for (unsigned i = 0; i < ITERATIONS; i++)
        uart_putc(i % 64 == 63 ? '\n' : (char)('a' + i % 26));
    uart_puts("\nmmio done\n");
    return 0;
}
