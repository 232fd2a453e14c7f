"""``partition: {column, partitions}`` of ``type: postgres`` against the real service: the
ranges are read on separate connections that share ONE snapshot, so writes committed while
the partitions are read (rows moved between ranges, inserted, deleted, balances moved
between partitions) never make them disagree."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate.sources._pg_partition import Hooks, ranges
from tests.run.helpers import make_project

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def pg(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("LG_TEST_PG_URL", pg_url)
    with psycopg.connect(_plain(pg_url), autocommit=True) as conn:
        yield conn


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _project(root: Path, source: dict[str, Any], **dataset: Any) -> Path:
    config = {"connections": {"db": {"type": "postgres", "url": "${LG_TEST_PG_URL}"}}}
    ds = {"name": "acc", "source": {"type": "postgres", "connection": "db", **source}}
    return make_project(root, [{**ds, **dataset}], config=config)


def test_ranges_cover_every_value_once() -> None:
    for lo, hi, n in [(1, 1000, 4), (-5, 5, 3), (7, 7, 8), (1, 3, 8), (0, 2**40, 5)]:
        parts = ranges(lo, hi, n)
        assert parts[0][0] == lo and parts[-1][1] is None
        for (a, b), (c, _) in itertools.pairwise(parts):
            assert b == c and a < b  # contiguous, non-empty, no overlap


def test_writes_during_a_partitioned_read_do_not_make_partitions_disagree(
    tmp_path: Path, pg: Any, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg.execute(
        "CREATE TABLE acc (id bigint PRIMARY KEY, balance bigint NOT NULL, note text);"
        "INSERT INTO acc SELECT g, 100, 'n' || g FROM generate_series(1, 1000) g"
    )
    lock = threading.Lock()
    calls: list[int] = []

    def write_meanwhile(i: int) -> None:
        # once the snapshot is exported (i = 4), and in each worker after it imported the
        # snapshot and before it reads, another client commits: a row moved from the first
        # range to beyond the last, money moved between the first and the last range, a row
        # deleted and one inserted
        with lock, psycopg.connect(_plain(pg_url), autocommit=True) as w, w.transaction():
            calls.append(i)
            w.execute("UPDATE acc SET id = id + 5000 WHERE id = %s", (10 + i,))
            w.execute("UPDATE acc SET balance = balance - 40 WHERE id = %s", (100 + i,))
            w.execute("UPDATE acc SET balance = balance + 40 WHERE id = %s", (900 + i,))
            w.execute("DELETE FROM acc WHERE id = %s", (500 + i,))
            w.execute("INSERT INTO acc VALUES (%s, 7, 'new')", (3000 + i,))

    monkeypatch.setattr(Hooks, "after_export", staticmethod(lambda: write_meanwhile(4)))
    monkeypatch.setattr(Hooks, "before_read", staticmethod(write_meanwhile))
    root = _project(
        tmp_path / "p", {"table": "acc", "partition": {"column": "id", "partitions": 4}}
    )
    result = lockgate.run(root)
    assert result.ok, result.steps[0].error
    assert sorted(calls) == [0, 1, 2, 3, 4]
    t = lockgate.read(root, "acc").to_pylist()
    # exactly the table as it was when the snapshot was exported
    assert sorted(r["id"] for r in t) == list(range(1, 1001))
    assert all(r["balance"] == 100 for r in t) and sum(r["balance"] for r in t) == 100_000
    # ... although the writes did commit while it was read
    assert pg.execute("SELECT count(*) FROM acc WHERE id > 1000").fetchone()[0] == 10
    assert result.steps[0].rows_in == 1000 == result.steps[0].rows_out


def test_null_partition_values_tiny_and_empty_tables(tmp_path: Path, pg: Any, pg_url: str) -> None:
    pg.execute(
        "CREATE TABLE n (k int, v text); INSERT INTO n VALUES (NULL, 'a'), (1, 'b'), "
        "(NULL, 'c'), (3, 'd'); CREATE TABLE e (k int, v text)"
    )
    part = {"column": "k", "partitions": 8}
    root = _project(tmp_path / "a", {"table": "n", "partition": part})
    assert lockgate.run(root).ok
    assert sorted(lockgate.read(root, "acc").column("v").to_pylist()) == ["a", "b", "c", "d"]
    root = _project(tmp_path / "b", {"table": "e", "partition": part})
    result = lockgate.run(root)
    assert result.ok and result.steps[0].rows_in == 0


def test_partitioned_incremental_with_settle_and_lookback(
    tmp_path: Path, pg: Any, pg_url: str
) -> None:
    pg.execute(
        "CREATE TABLE ev (id int, ts timestamptz);"
        "INSERT INTO ev SELECT g, now() - interval '1 hour' + g * interval '1 second' "
        "FROM generate_series(1, 300) g;"
        "INSERT INTO ev VALUES (301, now() + interval '1 hour')"  # in flight: not settled
    )
    src = {"table": "ev", "settle": "1m", "partition": {"column": "id", "partitions": 3}}
    root = _project(tmp_path / "p", src, incremental={"cursor": "ts", "lookback": "10s"})
    result = lockgate.run(root)
    assert result.ok, result.steps[0].error
    assert result.steps[0].rows_out == 300
    # committed late: 303 within the lookback (read again and published), 302 before it
    pg.execute("INSERT INTO ev SELECT 302, max(ts) - interval '1 hour' FROM ev WHERE id <= 300")
    pg.execute("INSERT INTO ev SELECT 303, max(ts) - interval '5 seconds' FROM ev WHERE id <= 300")
    result = lockgate.run(root)
    step = result.steps[0]
    assert result.ok, step.error
    # read: ts >= watermark - 10s (ids 290..300 again, and 303); 302 is beyond the lookback
    assert step.rows_in == 12 and step.rows_out == 1
    assert step.skip_reasons == {"already_published": 11}
    ids = sorted(lockgate.read(root, "acc").column("id").to_pylist())
    assert ids == [*range(1, 301), 303]


def test_a_failing_partition_fails_the_step_without_hanging(
    tmp_path: Path, pg: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg.execute("CREATE TABLE f AS SELECT g AS id FROM generate_series(1, 100000) g")

    def boom(i: int) -> None:
        if i == 2:
            raise RuntimeError("worker 2 lost its connection")

    monkeypatch.setattr(Hooks, "before_read", staticmethod(boom))
    root = _project(
        tmp_path / "p",
        {"table": "f", "partition": {"column": "id", "partitions": 4}},
        retry={"retries": 0},
    )
    result = lockgate.run(root)
    assert not result.ok and "worker 2 lost its connection" in (result.steps[0].error or "")
    with pytest.raises(Exception, match="acc"):
        lockgate.read(root, "acc")


def test_a_non_integer_partition_column_is_a_config_error(
    tmp_path: Path, pg: Any, pg_url: str
) -> None:
    pg.execute("CREATE TABLE t (id int, name text); INSERT INTO t VALUES (1, 'a')")
    root = _project(tmp_path / "p", {"table": "t", "partition": {"column": "name"}})
    err = lockgate.run(root).steps[0].error or ""
    assert "must be an integer column" in err
