"""``partition: {column, partitions}`` of ``type: mysql`` against the real MariaDB service:
the ranges are read on separate connections that all see ONE consistent moment, so writes
committed while they read (rows moved between ranges, inserted, deleted, money moved
between ranges) never make them disagree; writers waiting on the brief lock go on; a user
without the lock privilege falls back to one connection and says so."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate.sources._mysql_partition import Hooks
from tests.run.helpers import make_project

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

pymysql = pytest.importorskip("pymysql")
pytest.importorskip("connectorx")


@pytest.fixture
def my(mysql_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("LG_TEST_MYSQL_URL", mysql_url)
    conn = _connect(mysql_url)
    with conn.cursor() as cur:
        yield cur
    conn.close()


def _connect(url: str, user: str = "root", password: str = "") -> Any:
    db = url.rsplit("/", 1)[1]
    return pymysql.connect(
        host="127.0.0.1", user=user, password=password, database=db, autocommit=True
    )


def _project(root: Path, source: dict[str, Any], url_var: str = "LG_TEST_MYSQL_URL") -> Path:
    config = {"connections": {"db": {"type": "mysql", "url": "${" + url_var + "}"}}}
    ds = {"name": "acc", "source": {"type": "mysql", "connection": "db", **source}}
    return make_project(root, [ds], config=config)


def _accounts(my: Any, n: int = 1000) -> None:
    my.execute("CREATE TABLE acc (id bigint PRIMARY KEY, balance bigint NOT NULL, note text)")
    my.execute(
        f"INSERT INTO acc SELECT seq, 100, CONCAT('n', seq) FROM seq_1_to_{n}"  # MariaDB
    )


def test_writes_after_the_snapshots_are_not_seen_by_any_range(
    tmp_path: Path, my: Any, mysql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _accounts(my)
    calls: list[int] = []

    def write_meanwhile() -> None:
        # every reading connection has started its snapshot; none has read yet: another
        # client commits a row moved from the first range to beyond the last, money moved
        # between the first and the last range, a row deleted and one inserted
        w = _connect(mysql_url)
        with w.cursor() as c:
            c.execute("START TRANSACTION")
            c.execute("UPDATE acc SET id = id + 5000 WHERE id = 10")
            c.execute("UPDATE acc SET balance = balance - 40 WHERE id = 100")
            c.execute("UPDATE acc SET balance = balance + 40 WHERE id = 900")
            c.execute("DELETE FROM acc WHERE id = 500")
            c.execute("INSERT INTO acc VALUES (3000, 7, 'new')")
            c.execute("COMMIT")
        w.close()
        calls.append(1)

    monkeypatch.setattr(Hooks, "after_unlock", staticmethod(write_meanwhile))
    root = _project(
        tmp_path / "p", {"table": "acc", "partition": {"column": "id", "partitions": 4}}
    )
    result = lockgate.run(root)
    step = result.steps[0]
    assert result.ok, step.error
    assert calls == [1] and step.warnings == []
    rows = lockgate.read(root, "acc").to_pylist()
    ids = [r["id"] for r in rows]
    # the state before the writes, exactly: every row once, none of the new ones
    assert sorted(ids) == list(range(1, 1001))
    assert sum(r["balance"] for r in rows) == 100 * 1000
    assert {r["id"]: r["balance"] for r in rows}[100] == 100
    my.execute("SELECT COUNT(*), SUM(balance) FROM acc")  # the writes did commit
    assert my.fetchone() == (1000, 100 * 1000 - 100 + 7)


def test_a_writer_waiting_on_the_lock_goes_on_and_is_read_whole_or_not_at_all(
    tmp_path: Path, my: Any, mysql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction open on the table when the read starts: the lock waits for it, so the
    read sees all of it (never half)."""
    _accounts(my, 200)
    w = _connect(mysql_url)
    wc = w.cursor()
    wc.execute("START TRANSACTION")
    wc.execute("UPDATE acc SET balance = balance - 50 WHERE id = 1")
    wc.execute("UPDATE acc SET balance = balance + 50 WHERE id = 200")
    started = threading.Event()
    outcome: list[Any] = []

    def run() -> None:
        started.set()
        outcome.append(lockgate.run(root))

    root = _project(
        tmp_path / "p", {"table": "acc", "partition": {"column": "id", "partitions": 2}}
    )
    t = threading.Thread(target=run)
    t.start()
    started.wait()
    # the read may already be waiting on the lock, or not yet started: either way the
    # commit below lands before any snapshot (the lock waits for it) or the read is later
    wc.execute("COMMIT")
    t.join()
    w.close()
    (result,) = outcome
    assert result.ok, result.steps[0].error
    rows = {r["id"]: r["balance"] for r in lockgate.read(root, "acc").to_pylist()}
    assert sum(rows.values()) == 200 * 100 and len(rows) == 200
    assert (rows[1], rows[200]) == (50, 150)


def test_empty_table_and_nulls_in_the_partition_column(tmp_path: Path, my: Any) -> None:
    my.execute("CREATE TABLE acc (id bigint NULL, balance bigint)")
    root = _project(
        tmp_path / "p", {"table": "acc", "partition": {"column": "id", "partitions": 3}}
    )
    result = lockgate.run(root)
    assert result.ok, result.steps[0].error
    assert result.steps[0].rows_out == 0
    my.execute("INSERT INTO acc VALUES (NULL, 1), (NULL, 2), (5, 3), (6, 4), (90, 5)")
    result = lockgate.run(root)
    assert result.ok, result.steps[0].error
    assert result.steps[0].rows_out == 5  # NULL ids are read (by the first range)
    got = sorted(r["balance"] for r in lockgate.read(root, "acc").to_pylist())
    assert got == [1, 2, 3, 4, 5]


def test_without_the_lock_privilege_one_connection_reads_and_says_why(
    tmp_path: Path, my: Any, mysql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _accounts(my, 300)
    db = mysql_url.rsplit("/", 1)[1]
    user = "lg_nolock_" + uuid.uuid4().hex[:8]
    my.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'")
    my.execute(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY 'pw'")
    try:
        for host in ("%", "localhost"):
            my.execute(f"GRANT SELECT ON `{db}`.* TO '{user}'@'{host}'")  # no LOCK TABLES
        monkeypatch.setenv("LG_TEST_NOLOCK_URL", f"mysql://{user}:pw@127.0.0.1:3306/{db}")
        root = _project(
            tmp_path / "p",
            {"table": "acc", "partition": {"column": "id", "partitions": 3}},
            url_var="LG_TEST_NOLOCK_URL",
        )
        result = lockgate.run(root)
        step = result.steps[0]
        assert result.ok, step.error
        assert step.rows_out == 300
        (warning,) = step.warnings
        assert "LOCK refused" in warning and "read on one connection" in warning
        assert "pw@" not in warning
    finally:
        my.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        my.execute(f"DROP USER IF EXISTS '{user}'@'localhost'")


def test_the_table_is_locked_while_every_range_starts_its_snapshot(
    tmp_path: Path, my: Any, mysql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The protocol itself (connectorx starts its connections while holding the GIL, so no
    write can be injected between two of them): while the ranges' connections start, the
    table is read-locked (``SHOW OPEN TABLES``: in use) and each connection begins a
    consistent snapshot before anything else; after that the lock is gone."""
    import connectorx

    _accounts(my, 100)
    db = mysql_url.rsplit("/", 1)[1]
    seen: list[tuple[Any, ...]] = []
    real = connectorx.read_sql

    def in_use() -> int:
        probe = _connect(mysql_url)
        with probe.cursor() as c:
            c.execute(f"SHOW OPEN TABLES FROM `{db}` LIKE 'acc'")
            row = c.fetchone()
        probe.close()
        return int(row[2]) if row else 0

    def spy(url: str, queries: Any, **kw: Any) -> Any:
        seen.append((in_use(), list(kw["pre_execution_query"]), list(queries)))
        return real(url, queries, **kw)

    monkeypatch.setattr(connectorx, "read_sql", spy)
    root = _project(
        tmp_path / "p", {"table": "acc", "partition": {"column": "id", "partitions": 3}}
    )
    result = lockgate.run(root)
    assert result.ok, result.steps[0].error
    (call,) = [s for s in seen if isinstance(s[2], list) and len(s[2]) == 3]
    locked, pre, queries = call
    assert locked >= 1  # LOCK TABLES acc READ held while the connections start
    assert pre.index("START TRANSACTION WITH CONSISTENT SNAPSHOT") == len(pre) - 1
    assert all("`id` >=" in q or "id >=" in q for q in queries)
    assert in_use() == 0  # unlocked after the start
    assert sorted(r["id"] for r in lockgate.read(root, "acc").to_pylist()) == list(range(1, 101))
