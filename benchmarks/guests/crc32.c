/* CRC-32 (IEEE 802.3, reflected, as zlib.crc32) computed bit by bit over a 256-byte buffer,
 * ITERATIONS times, each pass chained on the previous CRC. Prints the final CRC. */
#include "guest.h"

#ifndef ITERATIONS
#define ITERATIONS 100
#endif
#define BUFFER_SIZE 256

static uint8_t buffer[BUFFER_SIZE];

static uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *data++;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1u));
    }
    return ~crc;
}

int main(void)
{
    for (unsigned i = 0; i < BUFFER_SIZE; i++)
        buffer[i] = (uint8_t)(i * 7 + 3);
    uint32_t crc = 0;
    for (unsigned i = 0; i < ITERATIONS; i++)
        crc = crc32_update(crc, buffer, BUFFER_SIZE);
    uart_puts("crc32 ");
    uart_put_hex(crc, 8);
    uart_putc('\n');
    return 0;
}
