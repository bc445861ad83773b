"""Loads and stores (Arm ARM C4.1.88), one table over the group's modules:

* :mod:`.ldst_single` -- one general-purpose register: LDR/STR (all sizes, sign-extending,
  immediate, register and literal addressing), LDTR/STTR, PRFM;
* :mod:`.ldst_pair` -- LDP/STP/LDPSW/LDNP/STNP;
* :mod:`.ldst_exclusive` -- LDXR/STXR and pairs, LDAR/STLR;
* :mod:`.ldst_atomic` -- FEAT_LSE: LD<op>, SWP, CAS, CASP;
* :mod:`.ldst_simd` -- SIMD&FP loads and stores (FP trap or UNDEFINED).

Every encoding no module claims is UNDEFINED: unallocated ones and those of extensions this PE
does not implement (FEAT_LOR, FEAT_LRCPC/LRCPC2, FEAT_PAuth LDRAA/LDRAB, FEAT_MTE, FEAT_MOPS,
FEAT_LS64, ...).
"""

from __future__ import annotations

from armvisor.cpu.decoder import DecodeTable
from armvisor.cpu.isa import (
    ldst_atomic,
    ldst_exclusive,
    ldst_pair,
    ldst_simd,
    ldst_single,
)

TABLE = DecodeTable("ldst")
TABLE.include(*(module.TABLE for module in (ldst_single, ldst_pair, ldst_exclusive, ldst_atomic, ldst_simd)))
