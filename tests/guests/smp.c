/* Two CPUs (-smp 2): CPU 0 powers CPU 1 on with PSCI CPU_ON (Arm DEN 0022, 5.6), waits for it to
 * report, checks with AFFINITY_INFO that CPU 1 turned itself off (CPU_OFF), then powers off.
 * The CPUs take turns to print (flags in memory), so the output is deterministic even
 * under QEMU's multi-threaded TCG. */
#include "guest.h"

#define PSCI_0_2_FN_CPU_OFF 0x84000002u
#define PSCI_0_2_FN64_CPU_ON 0xc4000003u
#define PSCI_0_2_FN64_AFFINITY_INFO 0xc4000004u
#define AFFINITY_LEVEL_OFF 1

void secondary_entry(void);
/* Entry of a CPU started by CPU_ON: x0 holds the context id, here its stack top. */
asm(".text\n"
    ".global secondary_entry\n"
    "secondary_entry:\n"
    "    mov sp, x0\n"
    "    ldr x0, =el1_vectors\n"
    "    msr vbar_el1, x0\n"
    "    isb\n"
    "    bl secondary_main\n"
    "1:  b 1b\n"
    "    .ltorg\n");

static volatile uint64_t go, reported; /* handshakes: cpu 0 prints, then cpu 1, then cpu 0 */
uint8_t secondary_stack[4096] __attribute__((aligned(16)));

static uint64_t mpidr(void)
{
    uint64_t value;
    asm volatile("mrs %0, mpidr_el1" : "=r"(value));
    return value;
}

void secondary_main(void)
{
    while (!go)
        ;
    uart_puts("hello from cpu 1, mpidr ");
    uart_put_hex(mpidr(), 8);
    uart_putc('\n');
    reported = 1;
    psci_call(PSCI_0_2_FN_CPU_OFF, 0, 0, 0);
    uart_puts("cpu 1: CPU_OFF returned\n");
    for (;;)
        ;
}

int main(void)
{
    uart_puts("hello from cpu 0, mpidr ");
    uart_put_hex(mpidr(), 8);
    uart_putc('\n');
    int64_t ret = psci_call(PSCI_0_2_FN64_CPU_ON, 1, (uint64_t)secondary_entry,
                            (uint64_t)(secondary_stack + sizeof secondary_stack));
    uart_puts("cpu_on ");
    uart_put_dec(ret);
    uart_putc('\n');
    go = 1;
    while (!reported)
        ;
    while (psci_call(PSCI_0_2_FN64_AFFINITY_INFO, 1, 0, 0) != AFFINITY_LEVEL_OFF)
        ;
    uart_puts("cpu 1 is off again; cpu_on twice: ");
    uart_put_dec(psci_call(PSCI_0_2_FN64_CPU_ON, 0, (uint64_t)secondary_entry, 0));
    uart_putc('\n');
    return 0;
}
