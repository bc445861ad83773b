/* PSCI over HVC: prints PSCI_VERSION's result, the result of an unknown function ID (and
 * whether X1-X3 came back zero), then asks for SYSTEM_RESET. */
#include "guest.h"

#define PSCI_0_2_FN_PSCI_VERSION 0x84000000u
#define UNKNOWN_FUNCTION 0x8400ff00u /* in the PSCI range, allocated to nothing */

int main(void)
{
    uart_puts("version ");
    uart_put_hex((uint64_t)psci_call(PSCI_0_2_FN_PSCI_VERSION, 0, 0, 0), 1);
    uart_puts("\nunknown ");
    uart_put_hex((uint64_t)psci_call(UNKNOWN_FUNCTION, 0, 0, 0), 1);
    uart_puts("\n");
    psci_system_reset();
}
