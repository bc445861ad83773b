"""Exception generation and system instructions (Arm ARM C4.1.87)."""

from __future__ import annotations

from armvisor.cpu.decoder import DecodeTable

TABLE = DecodeTable("system")
