"""Architectural facts only: exception syndromes, PSTATE, system-register encodings, memory map."""
