/* CRC-32 computed bit by bit, and a quicksort of pseudo-random signed numbers.
 *
 * Inputs come from the build (the test computes the expected output from the same inputs):
 *   CRC_TEXT   the string whose CRC-32 (IEEE 802.3, reflected, as zlib.crc32) is printed
 *   SORT_SEED  seed of the 32-bit LCG x = x * 1103515245 + 12345 that fills the array;
 *              each element is the LCG state read as int32_t, shifted right by 4 (signed)
 *   SORT_COUNT number of elements
 * Output: "crc32 0x<8 hex digits>\n" then "sorted" and the elements in ascending order. */
#include "guest.h"

#ifndef CRC_TEXT
#define CRC_TEXT "The quick brown fox jumps over the lazy dog"
#endif
#ifndef SORT_SEED
#define SORT_SEED 1u
#endif
#ifndef SORT_COUNT
#define SORT_COUNT 64
#endif

static int32_t numbers[SORT_COUNT];

static uint32_t crc32(const char *s)
{
    uint32_t crc = 0xffffffffu;
    for (; *s; s++) {
        crc ^= (uint8_t)*s;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1u));
    }
    return ~crc;
}

static void insertion_sort(int32_t *a, long n)
{
    for (long i = 1; i < n; i++) {
        int32_t v = a[i];
        long j = i;
        for (; j > 0 && a[j - 1] > v; j--)
            a[j] = a[j - 1];
        a[j] = v;
    }
}

static void quick_sort(int32_t *a, long n)
{
    while (n > 8) {
        int32_t pivot = a[n / 2];
        long i = 0, j = n - 1;
        for (;;) { /* Hoare partition */
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i >= j)
                break;
            int32_t t = a[i];
            a[i++] = a[j];
            a[j--] = t;
        }
        quick_sort(a, j + 1);
        a += j + 1;
        n -= j + 1;
    }
    insertion_sort(a, n);
}

int main(void)
{
    uart_puts("crc32 ");
    uart_put_hex(crc32(CRC_TEXT), 8);
    uart_putc('\n');

    uint32_t x = SORT_SEED;
    for (long i = 0; i < SORT_COUNT; i++) {
        x = x * 1103515245u + 12345u;
        numbers[i] = (int32_t)x >> 4;
    }
    quick_sort(numbers, SORT_COUNT);
    uart_puts("sorted");
    for (long i = 0; i < SORT_COUNT; i++) {
        uart_putc(' ');
        uart_put_dec(numbers[i]);
    }
    uart_putc('\n');
    return 0;
}
