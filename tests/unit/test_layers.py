"""The layering of design.md: each layer imports only from the layers below it
(arch < cpu < hyp < vmm < gdbstub < cli), checked by import-linter's contract in pyproject.toml."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_layers_contract_holds() -> None:
    result = subprocess.run(["lint-imports", "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout
