"""CPU of one stream commit (``store.publish`` append) with and without keeping the written
Delta table open between commits (``TableStore.keep_written_tables``):

    .venv/bin/python benchmarks/streams_commit_bench.py [--series N]

A 10,000-row "sink" batch and a 10-row "DLQ" batch, 60 commits each, into fresh tables.
``--series N``: N commits of the 10,000-row batch into one kept table (a stream's sink),
each timed: the median, the commits around the log checkpoint at version 100 and the
slowest three.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from lockgate.storage import store_for
from lockgate.storage.base import CommitTag, TableWrite


def series(rows: pa.Table, write: TableWrite, n: int) -> None:
    walls: list[float] = []
    cpus: list[float] = []
    with tempfile.TemporaryDirectory() as wh:
        store = store_for("delta", Path(wh))
        store.keep_written_tables()
        for i in range(1, n + 1):
            cpu, wall = time.process_time(), time.perf_counter()
            store.publish("sink", rows.to_reader(), write=write, tag=CommitTag("b", i, str(i)))
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        wait = getattr(store, "wait_for_checkpoints", None)
        if wait is not None:
            wait()
    ms = 1000
    print(
        f"{n} commits: median wall {statistics.median(walls) * ms:.1f} ms, "
        f"CPU {statistics.median(cpus) * ms:.1f} ms"
    )
    for v in (99, 100, 101):  # commit i makes version i - 1 (the first creates the table)
        if v + 1 <= n:
            print(f"  version {v}: wall {walls[v] * ms:.1f} ms, CPU {cpus[v] * ms:.1f} ms")
    slow = sorted(range(n), key=walls.__getitem__)[-3:][::-1]
    print("  slowest:", ", ".join(f"version {i}: {walls[i] * ms:.0f} ms" for i in slow))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=0)
    a = ap.parse_args()
    write = TableWrite("append", schema_mode="merge")
    now = dt.datetime.now(dt.UTC)
    n = 10_000
    rows = pa.table(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "user_id": list(range(n)),
            "email": ["x" * 64] * n,
            "amount": [1.0] * n,
            "_lockgate_offset": ["1-1"] * n,
            "_lockgate_received_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
        }
    )
    if a.series:
        series(rows, write, a.series)
        return
    for keep in (False, True):
        with tempfile.TemporaryDirectory() as wh:
            store = store_for("delta", Path(wh))
            if keep:
                store.keep_written_tables()
            for name, table in (("sink", rows), ("dlq", rows.slice(0, 10))):
                cpu, wall = time.process_time(), time.perf_counter()
                for i in range(60):
                    tag = CommitTag("bench", i, str(i))
                    store.publish(name, table.to_reader(), write=write, tag=tag)
                cpu_ms = (time.process_time() - cpu) / 60 * 1000
                wall_ms = (time.perf_counter() - wall) / 60 * 1000
                print(f"keep open {keep}: {name} CPU {cpu_ms:.1f} ms/commit, wall {wall_ms:.1f}")


if __name__ == "__main__":
    main()
