from __future__ import annotations

from pathlib import Path

import pytest

from lockgate.storage import DeltaStore


@pytest.fixture
def store(tmp_path: Path) -> DeltaStore:
    return DeltaStore(tmp_path / "warehouse")
