"""CPU of one stream commit (``store.publish`` append) with and without keeping the written
Delta table open between commits (``TableStore.keep_written_tables``):

    .venv/bin/python benchmarks/streams_commit_bench.py

A 10,000-row "sink" batch and a 10-row "DLQ" batch, 60 commits each, into fresh tables.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from lockgate.storage import store_for
from lockgate.storage.base import CommitTag, TableWrite


def main() -> None:
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
