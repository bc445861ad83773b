"""One Arm processing element (A64, EL0/EL1), knowing nothing of KVM.

Whatever the architecture routes to EL2 stops execution with the syndrome hardware would give
(ESR_EL2, FAR_EL2, HPFAR_EL2); see :mod:`armvisor.cpu.stops`.
"""

from armvisor.cpu.core import Cpu
from armvisor.cpu.memory import PhysicalMemory
from armvisor.cpu.stops import Budget, HypTrap, Stop, WaitForInterrupt

__all__ = ["Cpu", "PhysicalMemory", "Stop", "HypTrap", "Budget", "WaitForInterrupt"]
