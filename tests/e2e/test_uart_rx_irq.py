"""The PL011 receive interrupt driven from the VMM: bytes arriving on the UART's input (stdin)
raise SPI 33 through the in-kernel vGIC, wake the guest's WFI and are acknowledged through
GICC_IAR (issue 5 proof; PL011 TRM UARTIMSC.RXIM/UARTMIS.RXMIS, GICv2 IAR/EOIR)."""

from __future__ import annotations

import subprocess
import sys
import time

from guests import build_guest


def test_uart_rx_interrupt_echo() -> None:
    elf = build_guest("uart_rx_irq")
    proc = subprocess.Popen([sys.executable, "-m", "armvisor.cli.main", "run", "--timeout", "60", str(elf)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(0.2)  # the guest is now asleep in WFI
        proc.stdin.write(b"hello, ")
        proc.stdin.flush()
        time.sleep(0.2)
        proc.stdin.write(b"irq\n")
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        assert proc.stdout.read() == b"HELLO, IRQ\nby interrupt\n"
    finally:
        proc.kill()
        proc.wait()
