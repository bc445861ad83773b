/* Several MMIO devices of QEMU's virt board, read the way a driver probes them: the PrimeCell
 * identification registers of the PL011 UART and the PL031 RTC (ARM DDI0183 3.3.14-15,
 * DDI0224 3.3.10-11), the UART's reset flag/control values, and the RTC's seconds counter,
 * which counts host time. Byte and halfword accesses exercise the MMIO access sizes. */
#include "guest.h"

#define PL011_BASE 0x09000000UL
#define PL031_BASE 0x09010000UL
#define PRIMECELL_ID 0xfe0
#define UARTFR 0x018
#define UARTCR 0x030
#define UARTIMSC 0x038
#define RTCDR 0x000
#define RTCLR 0x008

/* One plain LDR: an access with writeback (which GCC may pick for a pointer walk) gives a data
 * abort without instruction syndrome, which KVM cannot emulate for MMIO. */
static uint32_t read32(uintptr_t address)
{
    uint32_t value;
    asm volatile("ldr %w0, [%1]" : "=r"(value) : "r"(address) : "memory");
    return value;
}

static void print_ids(const char *name, uintptr_t base)
{
    uart_puts(name);
    for (unsigned i = 0; i < 8; i++) {
        uart_putc(' ');
        uart_put_hex(read32(base + PRIMECELL_ID + 4 * i), 2);
    }
    uart_putc('\n');
}

static void print_reg(const char *name, uint32_t value)
{
    uart_puts(name);
    uart_put_hex(value, 1);
    uart_putc('\n');
}

int main(void)
{
    print_ids("pl011 id", PL011_BASE);
    print_ids("pl031 id", PL031_BASE);
    print_reg("pl011 cr ", read32(PL011_BASE + UARTCR));
    print_reg("pl011 imsc ", read32(PL011_BASE + UARTIMSC));
    print_reg("pl011 fr & txfe|rxfe ", read32(PL011_BASE + UARTFR) & 0x90);
    print_reg("pl011 periphid0 (byte) ", *(volatile uint8_t *)(PL011_BASE + PRIMECELL_ID));
    print_reg("pl031 pcellid1 (halfword) ", *(volatile uint16_t *)(PL031_BASE + PRIMECELL_ID + 0x14));
    uint32_t t0 = read32(PL031_BASE + RTCDR);
    *(volatile uint32_t *)(PL031_BASE + RTCLR) = 1000; /* the counter restarts from the load value */
    uint32_t t1 = read32(PL031_BASE + RTCDR);
    print_reg("pl031 after load ", t1 >= 1000 && t1 <= 1002);
    uart_puts("rtc ");
    uart_put_udec(t0);
    uart_putc('\n');
    return 0;
}
