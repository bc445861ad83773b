"""Why the CPU stopped running, and the Python exceptions that carry faults inside it.

A stop is what the PE hands its owner: an exception taken to EL2 (:class:`HypTrap`, the values
of ESR_EL2/FAR_EL2/HPFAR_EL2 and ELR_EL2 a real PE would write), the end of the instruction
budget, or a WFI that the owner did not ask to trap (the PE waits for an interrupt).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass
class HypTrap:
    """An exception taken to EL2. ``elr`` is ELR_EL2 (= the guest PC after the stop)."""

    __slots__ = ("esr", "far", "hpfar", "elr")
    esr: int
    far: int
    hpfar: int
    elr: int


@dataclass
class Budget:
    """The instruction budget ran out; PC is the next instruction to execute."""

    __slots__ = ()


@dataclass
class WaitForInterrupt:
    """An untrapped WFI completed: the PE is in its low-power state until an interrupt."""

    __slots__ = ()


Stop = Union[HypTrap, Budget, WaitForInterrupt]  # not "|": PyPy 3.9 runs this module too


class TrapToEL2(Exception):
    """Raised inside an instruction to take an exception to EL2.

    ``return_pc`` is the preferred return address when it is not the instruction itself
    (HVC and SMC-as-call return to the next instruction).
    """

    def __init__(self, esr: int, far: int = 0, hpfar: int = 0, return_pc: int | None = None):
        super().__init__(esr)
        self.esr = esr
        self.far = far
        self.hpfar = hpfar
        self.return_pc = return_pc


class DataAbort(Exception):
    """A data access faulted; the executor adds the instruction syndrome and routes it.

    ``stage`` 1 faults (alignment, address size) go to EL1, stage 2 faults (no RAM at the IPA)
    to EL2.  ``fsc`` is the DFSC; ``ipa`` is valid for stage 2 faults.
    """

    def __init__(self, va: int, is_write: bool, fsc: int, stage: int, ipa: int = 0, cm: bool = False):
        super().__init__(va)
        self.va = va
        self.is_write = is_write
        self.fsc = fsc
        self.stage = stage
        self.ipa = ipa
        self.cm = cm


class InstructionAbort(Exception):
    """An instruction fetch faulted (same routing rules as :class:`DataAbort`)."""

    def __init__(self, va: int, fsc: int, stage: int, ipa: int = 0):
        super().__init__(va)
        self.va = va
        self.fsc = fsc
        self.stage = stage
        self.ipa = ipa


class UnsupportedFeature(Exception):
    """The guest used something armvisor does not implement and cannot express as UNDEFINED.

    The message names the feature and the encoding; the state is left as before the instruction.
    """


class WaitForInterruptSignal(Exception):
    """Raised by an untrapped WFI after it completes; ``next_pc`` follows the WFI."""

    def __init__(self, next_pc: int):
        super().__init__(next_pc)
        self.next_pc = next_pc


class WatchpointHit(Exception):
    """A data access matched a watchpoint (raised before the access is performed)."""

    def __init__(self, va: int, is_write: bool):
        super().__init__(va)
        self.va = va
        self.is_write = is_write


class ReselectLoop(Exception):
    """Raised by an MSR that completed and changed what the executor must check (debug
    registers, MDSCR_EL1, the OS Lock): execution continues at the next instruction."""


class InterruptWindow(Exception):
    """Raised by an instruction that completed and may have unmasked an asserted interrupt
    (MSR DAIFClr/DAIF, ERET): the executor takes it before ``next_pc`` (None: the next
    instruction after an MSR)."""

    def __init__(self, next_pc: int | None = None):
        super().__init__(next_pc)
        self.next_pc = next_pc


class YieldToOwner(Exception):
    """Raised by an MSR that completed and changed what the PE's owner computes from its state
    (the generic timer's outputs): the run ends after it, so the owner sees the change at once."""


class CounterSample(Exception):
    """Raised by a read of an instruction-count clock where the executor does not track how
    many instructions the run has executed (the fast loop): the executor supplies the count
    and executes the instruction again (it has no side effects before the read)."""
