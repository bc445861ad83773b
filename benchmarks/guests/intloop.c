/* Hot integer loop: ITERATIONS rounds of a 64-bit xorshift mixed into an accumulator with adds,
 * a multiply and a data-dependent branch. Prints the accumulator. */
#include "guest.h"

#ifndef ITERATIONS
#define ITERATIONS 100000
#endif

int main(void)
{
    uint64_t state = 0x9e3779b97f4a7c15u, acc = 0;
    for (uint64_t i = 0; i < ITERATIONS; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if (state & 1)
            acc += state * 3;
        else
            acc ^= state + i;
    }
    uart_puts("intloop ");
    uart_put_hex(acc, 16);
    uart_putc('\n');
    return 0;
}
