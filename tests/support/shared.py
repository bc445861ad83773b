"""Where the project's shared folder is: beside the checkout (as on CI and in development),
else where the development machines keep it."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = next((p for p in (REPO.parent / "shared", Path("/work/shared")) if p.is_dir()), REPO.parent / "shared")
HARNESS = SHARED / "harness"
