"""Data processing -- register (Arm ARM C4.1.95)."""

from __future__ import annotations

from armvisor.cpu.decoder import DecodeTable

TABLE = DecodeTable("dp_reg")
