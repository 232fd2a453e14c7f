from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI output is asserted on text: make its width independent of the test runner's."""
    monkeypatch.setenv("COLUMNS", "200")
