"""``type: mysql`` on the real MariaDB service: a column dropped between runs goes through the
schema contract's policy, and a connection killed by the server mid-read is retried with
nothing published twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import lockgate
from tests.run.helpers import make_project

pytestmark = pytest.mark.mysql

pymysql = pytest.importorskip("pymysql")


@pytest.fixture
def my(mysql_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("LG_TEST_MYSQL_URL", mysql_url)
    db = mysql_url.rsplit("/", 1)[1]
    conn = pymysql.connect(host="127.0.0.1", user="root", database=db, autocommit=True)
    with conn.cursor() as cur:
        yield cur
    conn.close()


def _project(root: Path, source: dict[str, Any], **dataset: Any) -> Path:
    config = {"connections": {"db": {"type": "mysql", "url": "${LG_TEST_MYSQL_URL}"}}}
    ds = {"name": "items", "source": {"type": "mysql", "connection": "db", **source}}
    return make_project(root, [{**ds, **dataset}], config=config)


def test_dropped_and_added_columns_follow_the_contract_policy(tmp_path: Path, my: Any) -> None:
    my.execute("CREATE TABLE drift (id int, a text, b text)")
    my.execute("INSERT INTO drift VALUES (1, 'x', 'y')")
    frozen = _project(tmp_path / "f", {"table": "drift"}, schema_policy="freeze")
    evolving = _project(tmp_path / "e", {"table": "drift"}, schema_policy="evolve")
    assert lockgate.run(frozen).ok and lockgate.run(evolving).ok
    my.execute("ALTER TABLE drift DROP COLUMN b, ADD COLUMN c int")
    my.execute("INSERT INTO drift VALUES (2, 'z', 7)")
    refused = lockgate.run(frozen)
    assert not refused.ok
    err = str(refused.steps[0].error)
    assert "removed column 'b'" in err
    assert lockgate.read(frozen, "items").column("id").to_pylist() == [1]  # nothing published
    evolved = lockgate.run(evolving)
    assert evolved.ok, evolved
    step = evolved.steps[0]
    assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
    # evolve: the new column is added, the removed one kept as typed NULLs
    rows = sorted(
        lockgate.read(evolving, "items").to_pylist(), key=lambda r: (r["id"], r["b"] is None)
    )
    assert [(r["id"], r["b"], r["c"]) for r in rows] == [
        (1, "y", None),
        (1, None, None),
        (2, None, 7),
    ]


def test_connection_killed_mid_read_is_retried_and_nothing_is_published_twice(
    tmp_path: Path, my: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt's reading connection is killed by the server after one batch: the
    step is retried (transient) and the second attempt reads every row once."""
    import lockgate.sources.mysql as mysql_source

    my.execute("CREATE TABLE big (id int PRIMARY KEY, note varchar(20))")
    my.executemany("INSERT INTO big VALUES (%s, %s)", [(i, f"n{i}") for i in range(1, 20001)])
    real = mysql_source.load_stream
    attempts: list[int] = []

    def dying(session: Any, table: str, reader: pa.RecordBatchReader) -> str:
        attempts.append(1)
        if len(attempts) > 1:
            return real(session, table, reader)

        def batches() -> Any:
            yield next(iter(reader))
            my.execute(
                "SELECT id FROM information_schema.processlist"
                " WHERE id <> CONNECTION_ID() AND db = DATABASE() AND user = 'root'"
            )
            for (pid,) in my.fetchall():
                try:
                    my.execute(f"KILL {int(pid)}")
                except pymysql.err.MySQLError as e:  # it ended by itself in between
                    assert e.args[0] == 1094, e
            # what connectorx says when the server ends the connection under a read
            raise RuntimeError("Lost connection to MySQL server during query")

        return real(session, table, pa.RecordBatchReader.from_batches(reader.schema, batches()))

    monkeypatch.setattr(mysql_source, "load_stream", dying)
    root = _project(tmp_path / "p", {"table": "big", "batch_rows": 1024})
    (root / "lockgate.yaml").write_text(
        (root / "lockgate.yaml").read_text()
        + "defaults:\n  retries: 1\n  retry_backoff_seconds: 0\n"
    )
    result = lockgate.run(root)
    assert result.ok, result
    assert len(attempts) == 2 and result.steps[0].attempts == 2
    ids = lockgate.read(root, "items").column("id").to_pylist()
    assert sorted(ids) == list(range(1, 20001))
