"""Branches (Arm ARM C4.1.87): conditional, unconditional immediate and register, compare/test and branch."""

from __future__ import annotations

from armvisor.cpu.decoder import DecodeTable

TABLE = DecodeTable("branch")
