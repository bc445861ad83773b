"""armvisor: a pure-Python AArch64 virtual machine with a KVM/arm64-faithful hypervisor layer.

Layers (each imports only from the ones below it): ``arch`` (architectural facts), ``cpu``
(one Arm processing element), ``hyp`` (our KVM), ``vmm`` (userspace machine), ``gdbstub`` and
``cli``.
"""

__version__ = "0.1.0"
