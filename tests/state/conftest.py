"""State store fixtures: every store test runs on SQLite and on real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lockgate.state import StateStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('state')}/sub/state.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    s = StateStore.open(state_url)
    try:
        yield s
    finally:
        s.close()
