"""Loads and stores (Arm ARM C4.1.88)."""

from __future__ import annotations

from armvisor.cpu.decoder import DecodeTable

TABLE = DecodeTable("ldst")
