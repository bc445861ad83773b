"""Our KVM: the EL2 side of armvisor, modelled on Linux arch/arm64/kvm.

It receives the CPU's exceptions to EL2 and handles them as KVM does (exit-handler table by
exception class, MMIO, PSCI/SMCCC, system-register emulation, guest debug), behind the
KVM-shaped API that :mod:`armvisor.kvm` exports.
"""
