/* String formatting: ITERATIONS lines "item <dec> of <dec>: 0x<hex> [<padded dec>] <name>\n"
 * formatted into a buffer by a small printf-like formatter (%d %u %x %s and a width), the way
 * a kernel's vsnprintf works; the bytes are hashed (FNV-1a). Prints the hash. */
#include <stdarg.h>
#include "guest.h"

#ifndef ITERATIONS
#define ITERATIONS 100
#endif

static const char *const names[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"};

static char *put_unsigned(char *out, uint64_t value, unsigned base, unsigned width)
{
    char digits[20];
    unsigned n = 0;
    do {
        digits[n++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value);
    while (width > n) {
        *out++ = ' ';
        width--;
    }
    while (n)
        *out++ = digits[--n];
    return out;
}

static size_t format(char *buffer, const char *fmt, ...)
{
    va_list args;
    char *out = buffer;
    va_start(args, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            *out++ = *fmt;
            continue;
        }
        unsigned width = 0;
        while (fmt[1] >= '0' && fmt[1] <= '9')
            width = width * 10 + (unsigned)(*++fmt - '0');
        switch (*++fmt) {
        case 'd': {
            int64_t v = va_arg(args, int64_t);
            if (v < 0) {
                *out++ = '-';
                v = -v;
            }
            out = put_unsigned(out, (uint64_t)v, 10, width);
            break;
        }
        case 'u':
            out = put_unsigned(out, va_arg(args, uint64_t), 10, width);
            break;
        case 'x':
            out = put_unsigned(out, va_arg(args, uint64_t), 16, width);
            break;
        case 's':
            for (const char *s = va_arg(args, const char *); *s; s++)
                *out++ = *s;
            break;
        default:
            *out++ = *fmt;
        }
    }
    va_end(args);
    *out = '\0';
    return (size_t)(out - buffer);
}

int main(void)
{
    char line[128];
    uint32_t hash = 2166136261u;
    for (int64_t i = 0; i < ITERATIONS; i++) {
        size_t n = format(line, "item %d of %u: 0x%x [%8d] %s\n", i - 50, (uint64_t)ITERATIONS,
                          (uint64_t)(i * 2654435761u), i * i - 1000, names[i % 6]);
        for (size_t k = 0; k < n; k++)
            hash = (hash ^ (uint8_t)line[k]) * 16777619u;
    }
    uart_puts("format ");
    uart_put_hex(hash, 8);
    uart_putc('\n');
    return 0;
}
