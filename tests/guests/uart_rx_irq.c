/* UART receive by interrupt: the PL011 raises its RX interrupt (SPI 33 on QEMU's virt board)
 * through the GICv2; the CPU waits in WFI with PSTATE.I masked (WFI wakes on a pending
 * interrupt even when it is masked), acknowledges through GICC_IAR, drains the receive FIFO,
 * echoes each byte upper-cased and ends the interrupt with GICC_EOIR. It stops after a '\n'. */
#include "guest.h"

#define GICD 0x08000000UL
#define GICC 0x08010000UL
#define UART 0x09000000UL
#define UART_IRQ 33

static inline void w32(uintptr_t addr, uint32_t value) { *(volatile uint32_t *)addr = value; }
static inline uint32_t r32(uintptr_t addr) { return *(volatile uint32_t *)addr; }

int main(void)
{
    w32(GICD + 0x000, 1);                               /* GICD_CTLR: forward Group 0 */
    w32(GICD + 0x100 + 4 * (UART_IRQ / 32), 1u << (UART_IRQ % 32)); /* GICD_ISENABLER1 */
    w32(GICD + 0x820, r32(GICD + 0x820) | 1u << 8);     /* GICD_ITARGETSR8: INTID 33 -> CPU 0 */
    w32(GICC + 0x004, 0xff);                            /* GICC_PMR */
    w32(GICC + 0x000, 1);                               /* GICC_CTLR */
    w32(UART + 0x038, 1u << 4);                         /* UARTIMSC: RXIM */
    uart_puts("ready\n");
    unsigned interrupts = 0;
    for (;;) {
        __asm__ volatile("wfi");
        uint32_t iar = r32(GICC + 0x00c);
        if ((iar & 0x3ff) == 1023)
            continue;                                   /* spurious: nothing pending */
        if ((iar & 0x3ff) != UART_IRQ) {
            uart_puts("unexpected interrupt ");
            uart_put_udec(iar & 0x3ff);
            uart_putc('\n');
            psci_system_reset();
        }
        interrupts++;
        int done = 0;
        while (!(r32(UART + 0x018) & (1u << 4))) {      /* UARTFR.RXFE */
            char c = (char)(r32(UART) & 0xff);
            uart_putc(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
            done |= c == '\n';
        }
        w32(GICC + 0x010, iar);                         /* GICC_EOIR */
        if (done)
            break;
    }
    uart_puts(interrupts ? "by interrupt\n" : "no interrupt\n");
    return 0;
}
