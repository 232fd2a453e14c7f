"""The change fingerprint of incremental database reads, against the real services: a
scheduled run over an unchanged table is a no-op after one cheap query (nothing read, no
commit); a row at the newest cursor value, a newer row, a late row within the lookback or a
deleted newest row makes the next run read; a full read is read every run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate.project.loader import load_project
from lockgate.sources import source_for
from tests.run.helpers import make_project


def _project(root: Path, kind: str, source: dict[str, Any], **dataset: Any) -> Path:
    config = {"connections": {"db": {"type": kind, "url": "${LG_TEST_DB_URL}"}}}
    ds = {"name": "ev", "source": {"type": kind, "connection": "db", **source}, **dataset}
    return make_project(root, [ds], config=config)


def _status(root: Path) -> tuple[str, int, int]:
    step = lockgate.run(root).steps[0]
    assert step.error is None, step.error
    return str(step.status), step.rows_in, step.rows_out


def _scenario(root: Path, execute: Any) -> None:
    assert _status(root) == ("success", 3, 3)
    version = lockgate.read(root, "ev").num_rows
    assert _status(root)[0] == "noop"  # unchanged: the fingerprint answers, nothing is read
    assert _status(root)[0] == "noop"
    assert lockgate.read(root, "ev").num_rows == version
    execute("INSERT INTO ev VALUES (4, '2024-01-01 00:00:30')")  # same cursor as the newest
    status, _, rows_out = _status(root)
    assert status == "success" and rows_out == 1
    assert _status(root)[0] == "noop"
    execute("INSERT INTO ev VALUES (5, '2024-01-01 00:00:25')")  # late, within the lookback
    assert _status(root)[2] == 1
    execute("INSERT INTO ev VALUES (6, '2024-01-01 00:01:00')")  # newer
    assert _status(root)[2] == 1
    assert _status(root)[0] == "noop"
    assert sorted(lockgate.read(root, "ev").column("id").to_pylist()) == [1, 2, 3, 4, 5, 6]


def _one_probe_per_noop_run(root: Path, monkeypatch: pytest.MonkeyPatch, cls: str) -> None:
    """The no-op run asks the database once (the plan's fingerprint is the step's): one
    SELECT, in one transaction, on one connection."""
    import importlib

    module, _, name = cls.rpartition(".")
    source = getattr(importlib.import_module(module), name)
    real, calls = source.fingerprint, []

    def counted(self: Any) -> Any:
        calls.append(1)
        return real(self)

    monkeypatch.setattr(source, "fingerprint", counted)
    assert _status(root)[0] == "noop"
    assert calls == [1]


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_unchanged_table_is_a_noop(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    psycopg = pytest.importorskip("psycopg")
    url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    monkeypatch.setenv("LG_TEST_DB_URL", pg_url)
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(
            "CREATE TABLE ev (id int, ts timestamp); CREATE INDEX ON ev (ts);"
            "INSERT INTO ev VALUES (1, '2024-01-01 00:00:10'), (2, '2024-01-01 00:00:20'),"
            "(3, '2024-01-01 00:00:30')"
        )
        root = _project(
            tmp_path / "p",
            "postgres",
            {"table": "ev"},
            incremental={"cursor": "ts", "lookback": "10s"},
        )
        _scenario(root, pg.execute)
        _one_probe_per_noop_run(root, monkeypatch, "lockgate.sources.postgres.PostgresSource")
        # a full read has no fingerprint: every run reads the table
        full = _project(tmp_path / "f", "postgres", {"table": "ev"})
        project = load_project(full)
        assert source_for(project.source_request(project.datasets["ev"])).fingerprint() is None


@pytest.mark.mysql
@pytest.mark.slow
def test_mysql_unchanged_table_is_a_noop(
    tmp_path: Path, mysql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pymysql = pytest.importorskip("pymysql")
    from urllib.parse import urlsplit

    u = urlsplit(mysql_url)
    monkeypatch.setenv("LG_TEST_DB_URL", mysql_url)
    conn = pymysql.connect(
        host=u.hostname, port=u.port, user="root", database=u.path.lstrip("/"), autocommit=True
    )
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE ev (id int, ts datetime(6), KEY (ts))")
            cur.execute(
                "INSERT INTO ev VALUES (1, '2024-01-01 00:00:10'), (2, '2024-01-01 00:00:20'),"
                "(3, '2024-01-01 00:00:30')"
            )
            root = _project(
                tmp_path / "p",
                "mysql",
                {"table": u.path.lstrip("/") + ".ev"},
                incremental={"cursor": "ts", "lookback": "10s"},
            )
            _scenario(root, cur.execute)
            _one_probe_per_noop_run(root, monkeypatch, "lockgate.sources.mysql.MySqlSource")
    finally:
        conn.close()
