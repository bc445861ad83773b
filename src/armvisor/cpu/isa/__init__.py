"""A64 instruction semantics, one module per group of the Arm ARM's main encoding table (C4.1).

Each module exports ``TABLE``, a :class:`~armvisor.cpu.decoder.DecodeTable` whose builders
return ready-to-run ops.
"""
