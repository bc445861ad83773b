"""Where the project's shared folder is: beside the checkout (as on CI and in development)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
HARNESS = SHARED / "harness"
