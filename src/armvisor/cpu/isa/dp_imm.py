"""Data processing -- immediate (Arm ARM C4.1.86)."""

from __future__ import annotations

from armvisor.cpu.decoder import DecodeTable

TABLE = DecodeTable("dp_imm")
