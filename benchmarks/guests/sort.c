/* Sorting: ITERATIONS rounds of filling 128 int32 from a 32-bit LCG and sorting them with a
 * quicksort (median of three, Lomuto partition) that leaves short runs to an insertion sort. Prints a checksum
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

static inline void swap(int32_t *a, int32_t *b)
{
    int32_t t = *a;
    *a = *b;
    *b = t;
}

/* Median-of-three pivot moved to the end, Lomuto partition; recurse into the smaller side. */
static void quick_sort(int32_t *a, long n)
{
    while (n > 12) {
        long mid = n / 2, last = n - 1;
        if (a[mid] < a[0])
            swap(&a[mid], &a[0]);
        if (a[last] < a[0])
            swap(&a[last], &a[0]);
        if (a[mid] < a[last])
            swap(&a[mid], &a[last]);
        int32_t pivot = a[last];
        long store = 0;
        for (long i = 0; i < last; i++)
            if (a[i] < pivot)
                swap(&a[i], &a[store++]);
        swap(&a[store], &a[last]);
        if (store < n - store - 1) {
            quick_sort(a, store);
            a += store + 1;
            n -= store + 1;
        } else {
            quick_sort(a + store + 1, n - store - 1);
            n = store;
        }
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
