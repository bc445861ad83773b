/* The smallest C guest: one line on the UART, then crt0 powers off. */
#include "guest.h"

int main(void)
{
    uart_puts("Hello from armvisor!\n");
    return 0;
}
