"""``mysql_cdc`` across a failover: two private MariaDB servers, a primary (``--log-bin``) and
a replica (``--log-bin --log-slave-updates``, GTID replication ``MASTER_USE_GTID=slave_pos``).
The table is consumed from the primary, more is written, then the source connection points
at the replica (other binlog files, other byte positions, another server id): the run
resumes after the GTID the table's commit holds — every change exactly once, none missed —
and records the replica's position from then on."""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

import lockgate
from lockgate.runloop.follow import drain
from lockgate.sources._binlog import decode
from tests.cdc.conftest import mariadb_server, mysql_cdc_project

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

_DB = "mycdc_failover"


def _connect(port: int) -> Any:
    import pymysql

    return pymysql.connect(
        host="127.0.0.1",
        port=port,
        user="root",
        autocommit=True,
        init_command="SET time_zone='+00:00'",
    )


def _sql(conn: Any, *statements: str) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    with conn.cursor() as cur:
        for s in statements:
            cur.execute(s)
            out = list(cur.fetchall())
    return out


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[int, int]]:
    """(primary port, replica port), the replica following the primary by GTID."""
    common = ("--log-slave-updates", "--gtid-strict-mode=1")
    with mariadb_server(11, *common) as primary, mariadb_server(12, *common) as replica:
        conn = _connect(replica)
        try:
            # the replica's log rotated once more: its files and positions differ from the
            # primary's (else they could coincide byte for byte: the same events, in order)
            _sql(conn, "FLUSH BINARY LOGS")
            _sql(
                conn,
                f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary}, "
                "MASTER_USER='root', MASTER_USE_GTID=slave_pos",
                "START SLAVE",
            )
            yield primary, replica
        finally:
            _sql(conn, "STOP SLAVE")
            conn.close()


def _caught_up(primary: Any, replica: Any) -> None:
    """Wait until the replica applied everything the primary logged (MASTER_GTID_WAIT)."""
    ((pos,),) = _sql(primary, "SELECT @@gtid_binlog_pos")
    ((ok,),) = _sql(replica, f"SELECT MASTER_GTID_WAIT('{pos}', 60)")
    assert ok == 0, f"replica did not reach {pos}: {_sql(replica, 'SHOW SLAVE STATUS')}"


def _run(root: Path) -> list[Any]:
    results = drain(lambda refresh: lockgate.run(root, max_workers=1, full_refresh=refresh))
    for result in results:
        for step in result.steps:
            assert str(step.status) in ("success", "noop"), (step.dataset, step.error)
            assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
    return results


def _changes(results: list[Any]) -> tuple[int, dict[str, int]]:
    """Records read by the runs, and what was skipped by reason."""
    n, skipped = 0, dict[str, int]()
    for result in results:
        for step in result.steps:
            n += step.rows_in
            for reason, k in step.skip_reasons.items():
                skipped[reason] = skipped.get(reason, 0) + k
    return n, skipped


def _source(conn: Any) -> list[dict[str, Any]]:
    rows = _sql(conn, f"SELECT id, name, amount FROM {_DB}.t ORDER BY id")
    return [{"id": r[0], "name": r[1], "amount": r[2]} for r in rows]


def _delta(root: Path) -> list[dict[str, Any]]:
    rows = DeltaTable(str(root / "warehouse" / "t")).to_pyarrow_table().to_pylist()
    return sorted(
        ({k: r[k] for k in ("id", "name", "amount")} for r in rows), key=lambda r: r["id"]
    )


def _workload(conn: Any, rng: random.Random, n: int, live: set[int], other: bool) -> int:
    """``n`` random transactions (inserts, updates incl. key changes, deletes, and writes
    to another table); the number of change events of ``t`` they make."""
    events = 0
    _sql(conn, f"USE {_DB}")
    for _ in range(n):
        statements = ["BEGIN"]
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            if op < 0.45 or not live:
                k = max(live | {0}) + 1
                live.add(k)
                amount = Decimal(rng.randint(-(10**6), 10**6)) / 100
                statements.append(f"INSERT INTO t VALUES ({k}, 'n{k}', {amount})")
                events += 1
            elif op < 0.7:
                k = rng.choice(sorted(live))
                statements.append(f"UPDATE t SET name = 'u{rng.randint(0, 99)}' WHERE id = {k}")
                events += 1
            elif op < 0.8:
                k = rng.choice(sorted(live))
                new = max(live) + 1
                live.discard(k)
                live.add(new)
                statements.append(f"UPDATE t SET id = {new} WHERE id = {k}")
                events += 2  # the old key deleted, the new inserted
            else:
                k = rng.choice(sorted(live))
                live.discard(k)
                statements.append(f"DELETE FROM t WHERE id = {k}")
                events += 1
        if other:
            statements.append(f"INSERT INTO other VALUES (NULL, {rng.randint(0, 9)})")
        statements.append("COMMIT")
        _sql(conn, *statements)
    return events


def test_failover_to_replica_resumes_by_gtid(
    pair: tuple[int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    primary_port, replica_port = pair
    primary, replica = _connect(primary_port), _connect(replica_port)
    rng = random.Random(9)
    _sql(
        primary,
        f"CREATE DATABASE {_DB}",
        f"USE {_DB}",
        "CREATE TABLE t (id int PRIMARY KEY, name varchar(20), amount decimal(10,2))",
        "CREATE TABLE other (id int AUTO_INCREMENT PRIMARY KEY, v int)",
    )
    live: set[int] = set()
    _workload(primary, rng, 20, live, other=False)
    root = mysql_cdc_project(tmp_path / "p", _DB, {"t": ["id"]})
    monkeypatch.setenv("LG_CDC_MY_URL", f"mysql://root@127.0.0.1:{primary_port}/{_DB}")
    _run(root)  # the snapshot, at the primary's position
    expected = _workload(primary, rng, 30, live, other=True)
    n, skipped = _changes(_run(root))
    assert n == expected and not skipped.get("already_applied")
    assert _delta(root) == _source(primary)
    on_primary = decode(_table_position(root))
    replica_files = {r[0] for r in _sql(replica, "SHOW BINARY LOGS")}
    assert f"binlog.{on_primary[0]:06d}" in replica_files  # the file is there: another server

    # more on the primary the table has not seen; then the source is the replica
    expected = _workload(primary, rng, 25, live, other=True)
    _caught_up(primary, replica)
    _sql(replica, "STOP SLAVE")  # the failover: the replica is the source now
    expected += _workload(replica, rng, 10, live, other=True)
    monkeypatch.setenv("LG_CDC_MY_URL", f"mysql://root@127.0.0.1:{replica_port}/{_DB}")
    n, skipped = _changes(_run(root))
    assert n == expected, (n, expected, skipped)  # no change twice, none missed
    assert not skipped.get("already_applied")
    assert _delta(root) == _source(replica)
    on_replica = decode(_table_position(root))
    ((file, pos),) = [r[:2] for r in _sql(replica, "SHOW MASTER STATUS")]
    assert on_replica == decode(_encode(file, pos)) and on_replica != on_primary

    # later runs read the replica by its own positions
    expected = _workload(replica, rng, 10, live, other=False)
    n, skipped = _changes(_run(root))
    assert n == expected and not skipped.get("already_applied")
    assert _delta(root) == _source(replica)
    _sql(replica, f"DROP DATABASE {_DB}")
    _sql(primary, f"DROP DATABASE {_DB}")


def _encode(file: str, pos: int) -> int:
    from lockgate.sources._binlog import encode

    return encode(file, int(pos))


def _table_position(root: Path) -> int:
    v = DeltaTable(str(root / "warehouse" / "t")).transaction_version("cdc:lg_t")
    assert v is not None
    return v
