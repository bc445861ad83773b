"""Devices of the ``virt`` board: register models behind the MMIO bus, each adding its own
device-tree node (kvmtool's and Firecracker's split of device state from the bus)."""

from armvisor.vmm.devices.base import MmioDevice
from armvisor.vmm.devices.pl011 import Pl011
from armvisor.vmm.devices.pl031 import Pl031

__all__ = ["MmioDevice", "Pl011", "Pl031"]
