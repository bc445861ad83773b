/* Memory copying: ITERATIONS copies of 1 KiB between 16 KiB buffers at moving offsets, with
 * 64-bit loads and stores (aligned), and a byte copy of the unaligned tail. Prints a checksum. */
#include "guest.h"

#ifndef ITERATIONS
#define ITERATIONS 100
#endif
#define BUFFER_WORDS 2048
#define COPY_WORDS 128

/* Own pages: a store to a page holding code makes QEMU (and armvisor) drop its translations. */
static uint64_t source[BUFFER_WORDS] __attribute__((aligned(4096)));
static uint64_t target[BUFFER_WORDS] __attribute__((aligned(4096)));

static void copy_words(uint64_t *dst, const uint64_t *src, size_t words)
{
    for (size_t i = 0; i < words; i += 2) {
        uint64_t a = src[i], b = src[i + 1];
        dst[i] = a;
        dst[i + 1] = b;
    }
}

static void copy_bytes(uint8_t *dst, const uint8_t *src, size_t n)
{
    while (n--)
        *dst++ = *src++;
}

int main(void)
{
    for (unsigned i = 0; i < BUFFER_WORDS; i++)
        source[i] = i * 0x0101010101010101u;
    uint64_t sum = 0;
    for (unsigned i = 0; i < ITERATIONS; i++) {
        unsigned from = (i * 37) % (BUFFER_WORDS - COPY_WORDS) & ~1u;
        unsigned to = (i * 91) % (BUFFER_WORDS - COPY_WORDS) & ~1u;
        copy_words(&target[to], &source[from], COPY_WORDS);
        copy_bytes((uint8_t *)&target[to] + 3, (const uint8_t *)&source[from] + 5, 13);
        sum += target[to + i % COPY_WORDS] ^ target[to];
    }
    uart_puts("memcpy ");
    uart_put_hex(sum, 16);
    uart_putc('\n');
    return 0;
}
