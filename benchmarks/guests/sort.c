/* Sorting: ITERATIONS rounds of filling 128 int32 from a 32-bit LCG and sorting them with a
 * quicksort (Hoare partition) that leaves short runs to an insertion sort. Prints a checksum
 * of the sorted arrays. */
#include "guest.h"

#ifndef ITERATIONS
#define ITERATIONS 100
#endif
#define COUNT 128

/* Own page: a store to a page holding code makes QEMU (and armvisor) drop its translations. */
static int32_t numbers[COUNT] __attribute__((aligned(4096)));

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
    while (n > 12) {
        int32_t pivot = a[n / 2];
        long i = 0, j = n - 1;
        for (;;) {
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
    uint32_t x = 1, sum = 0;
    for (unsigned round = 0; round < ITERATIONS; round++) {
        for (unsigned i = 0; i < COUNT; i++) {
            x = x * 1103515245u + 12345u;
            numbers[i] = (int32_t)x >> 4;
        }
        quick_sort(numbers, COUNT);
        for (unsigned i = 0; i < COUNT; i++)
            sum = sum * 31 + (uint32_t)numbers[i];
    }
    uart_puts("sort ");
    uart_put_hex(sum, 8);
    uart_putc('\n');
    return 0;
}
