"""The initial ``postgres_cdc`` snapshot copied on several connections, one primary-key
range each, all in the slot's exported snapshot: concurrent writes between the export and
the copies are in no copy and arrive as changes on the next run; the ranges cover every row
exactly once (one row, negative keys, gaps, more partitions than rows, an empty table); a
key that cannot be split is copied on one connection with a warning; ``kill -9``
mid-snapshot publishes nothing and the next run starts a fresh slot and snapshot."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from deltalake import DeltaTable

import lockgate
from lockgate.runloop.follow import drain
from lockgate.sources import _cdc_snapshot
from lockgate.sources._cdc_snapshot import SnapshotHooks, SnapshotPlan
from lockgate.sources._pg_partition import ranges
from lockgate.sources._pgoutput import lsn_int
from tests.cdc.conftest import cdc_project

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _env(cdc_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LG_CDC_URL", cdc_url)
    monkeypatch.setattr(SnapshotHooks, "after_export", None)
    monkeypatch.setattr(SnapshotHooks, "before_copy", None)


def _prefix() -> str:
    return "s" + uuid.uuid4().hex[:8]


def _runs(root: Path) -> list[Any]:
    results = drain(lambda refresh: lockgate.run(root, max_workers=1, full_refresh=refresh))
    for result in results:
        for step in result.steps:
            assert str(step.status) in ("success", "noop"), (step.dataset, step.error)
            assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
    return results


def _delta(root: Path, name: str, cols: list[str]) -> list[tuple[Any, ...]]:
    t = DeltaTable(str(root / "warehouse" / name)).to_pyarrow_table(columns=cols)
    return sorted(tuple(r[c] for c in cols) for r in t.to_pylist())


def _source(src: Any, name: str, cols: list[str]) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in src.execute(f"SELECT {', '.join(cols)} FROM {name}"))


def _copies() -> list[int]:
    seen: list[int] = []
    SnapshotHooks.before_copy = seen.append  # list.append is atomic under the GIL
    return seen


@pytest.mark.parametrize(
    ("lo", "hi", "n"),
    [(1, 1, 4), (-10, -1, 3), (-5, 5, 4), (0, 2**40, 7), (1, 3, 8), (7, 100, 1), (1, 10, 10)],
)
def test_ranges_cover_every_key_exactly_once(lo: int, hi: int, n: int) -> None:
    parts = ranges(lo, hi, n)
    assert parts[0][0] == lo and parts[-1][1] is None
    assert len(parts) <= n
    for (_, end), (start, _) in itertools.pairwise(parts):
        assert end == start  # adjacent half-open ranges: no gap, no overlap
    probe = {lo, hi, lo + 1, hi - 1, (lo + hi) // 2, *(p[0] for p in parts)}
    probe |= {p[1] - 1 for p in parts if p[1] is not None}
    for key in (k for k in probe if lo <= k <= hi):
        hits = [p for p in parts if p[0] <= key and (p[1] is None or key < p[1])]
        assert len(hits) == 1, (key, parts)


def test_partitioned_snapshot_with_concurrent_writes(src: Any, tmp_path: Path) -> None:
    src.execute("CREATE TABLE acc (id bigint PRIMARY KEY, v int NOT NULL, note text)")
    src.execute("INSERT INTO acc SELECT g, g % 97, 'n' || g FROM generate_series(1, 4000) g")
    root = cdc_project(tmp_path, {"acc": ["id"]}, slot_prefix=_prefix(), snapshot_partitions=4)
    plans: list[SnapshotPlan] = []

    def write(plan: SnapshotPlan) -> None:  # after the export, before any copy starts
        plans.append(plan)
        with src.transaction():
            src.execute("INSERT INTO acc SELECT g, 1, 'new' FROM generate_series(-50, 0) g")
            src.execute("INSERT INTO acc SELECT g, 2, 'new' FROM generate_series(4001, 4100) g")
            # keys moved from the first range to the last one and back: a copy that saw the
            # new rows would hold them twice, one that missed the old rows would lose them
            src.execute("UPDATE acc SET id = id + 10000, v = -1 WHERE id BETWEEN 1 AND 30")
            src.execute("UPDATE acc SET id = id - 10000 WHERE id BETWEEN 3990 AND 4000")
            src.execute("UPDATE acc SET note = 'changed' WHERE id % 100 = 0")
            src.execute("DELETE FROM acc WHERE id BETWEEN 2000 AND 2100")

    SnapshotHooks.after_export = write
    seen = _copies()
    first = _runs(root)[0]
    assert plans and plans[0].column == "id" and len(plans[0].ranges) == 4
    assert sorted(seen) == [0, 1, 2, 3]
    # the snapshot: the table as exported, every row read once (a row copied by two ranges
    # would be read twice and dropped as a duplicate key: rows_in counts it)
    assert (first.steps[0].rows_in, first.steps[0].rows_out) == (4000, 4000)
    cols = ["id", "v", "note"]
    snap = _delta(tmp_path, "acc", cols)
    assert [r[0] for r in snap] == list(range(1, 4001))
    SnapshotHooks.after_export = None
    _runs(root)  # the concurrent writes, from the slot
    published = _delta(tmp_path, "acc", cols)
    assert len({r[0] for r in published}) == len(published)  # no row twice
    assert published == _source(src, "acc", cols)


@pytest.mark.parametrize(
    ("keys", "partitions"),
    [
        ([7], 4),  # one row
        ([*list(range(-300, -100)), -5, 0, 5], 3),  # negative keys
        ([1, 2, 3, 10**6, 10**6 + 1, 2**40, 2**62], 5),  # gaps, bigint
        ([10, 20, 30], 16),  # more partitions than rows
        ([-(2**63), 2**63 - 1], 4),  # the extremes of bigint
        ([], 4),  # an empty table
    ],
    ids=["one-row", "negative", "gaps", "more-partitions-than-rows", "bigint-extremes", "empty"],
)
def test_partition_edge_cases(src: Any, tmp_path: Path, keys: list[int], partitions: int) -> None:
    src.execute("CREATE TABLE edge (id bigint PRIMARY KEY, v text)")
    for k in keys:
        src.execute("INSERT INTO edge VALUES (%s, %s)", (k, f"v{k}"))
    root = cdc_project(
        tmp_path, {"edge": ["id"]}, slot_prefix=_prefix(), snapshot_partitions=partitions
    )
    seen = _copies()
    first = _runs(root)[0]
    assert (first.steps[0].rows_in, first.steps[0].rows_out) == (len(keys), len(keys))
    assert _delta(tmp_path, "edge", ["id", "v"]) == _source(src, "edge", ["id", "v"])
    # one copy per range of min..max (empty ranges too), one for an empty table
    expected = len(ranges(min(keys), max(keys), partitions)) if keys else 1
    assert len(seen) == expected and expected <= partitions


@pytest.mark.parametrize(
    ("ddl", "why"),
    [
        ("CREATE TABLE odd (a int, b int, v text, PRIMARY KEY (a, b))", "composite"),
        ("CREATE TABLE odd (a text PRIMARY KEY, b int, v text)", "not an integer"),
    ],
)
def test_unsplittable_key_copies_on_one_connection_with_a_warning(
    src: Any, tmp_path: Path, ddl: str, why: str
) -> None:
    src.execute(ddl)
    src.execute("INSERT INTO odd SELECT g::text::int, g, 'x' FROM generate_series(1, 20) g")
    keys = ["a", "b"] if why == "composite" else ["a"]
    root = cdc_project(tmp_path, {"odd": keys}, slot_prefix=_prefix(), snapshot_partitions=4)
    seen = _copies()
    first = _runs(root)[0]
    assert seen == [0]
    assert first.steps[0].rows_out == 20
    assert any(why in w and "one connection" in w for w in first.steps[0].warnings)


def test_large_table_is_split_by_default(
    src: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src.execute("CREATE TABLE big (id int PRIMARY KEY, v int)")
    src.execute("INSERT INTO big SELECT g, g FROM generate_series(1, 500) g")
    src.execute("ANALYZE big")  # reltuples = 500
    monkeypatch.setattr(_cdc_snapshot, "SPLIT_ROWS", 400)
    root = cdc_project(tmp_path, {"big": ["id"]}, slot_prefix=_prefix())
    seen = _copies()
    assert _runs(root)[0].steps[0].rows_out == 500
    assert sorted(seen) == list(range(_cdc_snapshot.AUTO_PARTITIONS))
    monkeypatch.setattr(_cdc_snapshot, "SPLIT_ROWS", 500)  # not above: one connection
    src.execute("CREATE TABLE small (id int PRIMARY KEY, v int)")
    src.execute("INSERT INTO small SELECT g, g FROM generate_series(1, 500) g")
    src.execute("ANALYZE small")
    root2 = cdc_project(tmp_path / "b", {"small": ["id"]}, slot_prefix=_prefix())
    seen2 = _copies()
    _runs(root2)
    assert seen2 == [0]


def test_kill_9_mid_partitioned_snapshot_publishes_nothing(
    src: Any, cdc_url: str, tmp_path: Path
) -> None:
    src.execute("CREATE TABLE crash (id int PRIMARY KEY, v text)")
    src.execute("INSERT INTO crash SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g")
    p = _prefix()
    root = cdc_project(tmp_path, {"crash": ["id"]}, slot_prefix=p, snapshot_partitions=3)
    log = tmp_path / "crash.log"
    env = {**os.environ, "LG_CDC_URL": cdc_url, "LOCKGATE_CRASH_LOG": str(log)}
    cmd = [sys.executable, "-m", "lockgate", "run", "-j", "1", "--json", "-p", str(root)]
    proc = subprocess.run(
        cmd, env={**env, "LOCKGATE_CRASH_AT": "2"}, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert log.read_text().splitlines()[-1].endswith("mid-snapshot")
    assert not (root / "warehouse" / "crash" / "_delta_log").exists()  # nothing published
    slot = f"{p}_crash"
    with psycopg.connect(cdc_url, autocommit=True) as c:
        old = c.execute(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        ).fetchone()
    assert old is not None  # the killed run's slot is left behind, unused
    src.execute("UPDATE crash SET v = 'after' WHERE id <= 10")
    src.execute("INSERT INTO crash VALUES (5000, 'late')")
    env["LOCKGATE_CRASH_AT"] = "999"  # count (and log) the points, never die
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert log.read_text().count("mid-snapshot") == 2  # the next run snapshotted afresh
    assert _delta(root, "crash", ["id", "v"]) == _source(src, "crash", ["id", "v"])
    table = DeltaTable(str(root / "warehouse" / "crash"))
    position = table.transaction_version("cdc:" + slot)
    row = src.execute(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    assert position is not None and position > lsn_int(old[0])  # a fresh slot's snapshot
    assert lsn_int(row[0]) <= position


def test_a_failed_range_fails_the_snapshot_and_publishes_nothing(src: Any, tmp_path: Path) -> None:
    src.execute("CREATE TABLE fail (id int PRIMARY KEY, v int)")
    src.execute("INSERT INTO fail SELECT g, g FROM generate_series(1, 300) g")
    root = cdc_project(tmp_path, {"fail": ["id"]}, slot_prefix=_prefix(), snapshot_partitions=3)

    def boom(i: int) -> None:
        if i == 1:
            raise RuntimeError("range 1 lost its connection")

    SnapshotHooks.before_copy = boom
    result = lockgate.run(root, max_workers=1)
    step = result.steps[0]
    assert str(step.status) != "success"
    assert "range 1 lost its connection" in str(step.error)
    assert not (root / "warehouse" / "fail" / "_delta_log").exists()
    SnapshotHooks.before_copy = None
    _runs(root)  # the next run snapshots afresh
    assert _delta(root, "fail", ["id", "v"]) == _source(src, "fail", ["id", "v"])
