/* A guest that misbehaves on purpose, in the way selected by FAULT (one of the FAULT_* below).
 * It prints "before", executes the faulting instruction at the global label fault_insn, then
 * prints "after" if it survives. */
#include "guest.h"

#define FAULT_UNMAPPED_STORE 1 /* store to an address with neither RAM nor device */
#define FAULT_NO_SYNDROME 2    /* store pair to the UART: a data abort with ISV=0 */
#define FAULT_UNDEFINED 3      /* UDF: an exception to EL1, reported by crt0's vectors */
#define FAULT_WFI 4            /* wait for an interrupt that cannot come */
#define FAULT_SPIN 5           /* loop forever */
#define FAULT_CPU_OFF 6        /* PSCI CPU_OFF on the only CPU: nothing can power it on again */

#define UNMAPPED_ADDRESS 0x70000000UL /* in virt's RAM window, beyond the default 128M */
#define UART0_BASE 0x09000000UL

#define AT_FAULT_INSN(insn) ".global fault_insn\nfault_insn: " insn

int main(void)
{
    uart_puts("before\n");
#if FAULT == FAULT_UNMAPPED_STORE
    asm volatile(AT_FAULT_INSN("str %w0, [%1]") : : "r"(1), "r"(UNMAPPED_ADDRESS) : "memory");
#elif FAULT == FAULT_NO_SYNDROME
    asm volatile(AT_FAULT_INSN("stp %w0, %w0, [%1]") : : "r"('!'), "r"(UART0_BASE) : "memory");
#elif FAULT == FAULT_UNDEFINED
    asm volatile(AT_FAULT_INSN("udf #0"));
#elif FAULT == FAULT_WFI
    asm volatile(AT_FAULT_INSN("wfi"));
#elif FAULT == FAULT_CPU_OFF
    register uint64_t function asm("x0") = 0x84000002u;
    asm volatile(AT_FAULT_INSN("hvc #0") : "+r"(function) : : "x1", "x2", "x3", "memory");
#elif FAULT == FAULT_SPIN
    asm volatile(AT_FAULT_INSN("b fault_insn"));
#else
#error "FAULT must be one of the FAULT_* values"
#endif
    uart_puts("after\n");
    return 0;
}
