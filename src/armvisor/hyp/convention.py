"""KVM's exit-handler return convention (arch/arm64/kvm/handle_exit.c): a handler returns
``RESUME`` (> 0) to re-enter the guest, ``EXIT_TO_USER`` (0) to return to userspace with
``kvm_run.exit_reason`` filled in, or a negative errno to fail the run."""

RESUME = 1
EXIT_TO_USER = 0
