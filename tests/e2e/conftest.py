from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "shop"


def lockgate_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lockgate", *args]


def run_cli(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run(
        lockgate_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def copy_example(dst: Path, orders: int, seed: int = 7) -> Path:
    shutil.copytree(
        EXAMPLE, dst, ignore=shutil.ignore_patterns("data", "warehouse", ".lockgate", "__pycache__")
    )
    subprocess.run(
        [sys.executable, "generate.py", "--orders", str(orders), "--seed", str(seed)],
        cwd=dst,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return dst


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "shop", orders=3000)
