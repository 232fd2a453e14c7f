"""Child process for test_crash: publishes a large generated batch and dies at a chosen
place — after handing delta-rs ``kill_after`` batches (mid-write), or at a lockgate crash
point (``LOCKGATE_CRASH_AT``, set by the parent)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from lockgate.storage import CommitTag, DeltaStore, TableWrite

BATCH_ROWS = 50_000


def main() -> None:
    warehouse, seq, batches, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    kill_after = int(sys.argv[5])  # -1: never
    store = DeltaStore(Path(warehouse))
    store.version("t")  # warm up: load delta-rs and the table before saying ready
    batch = pa.record_batch(
        {
            "seq": pa.array([seq] * BATCH_ROWS, pa.int64()),
            "x": pa.array(range(BATCH_ROWS), pa.int64()),
            "s": pa.array([f"row-{i:08d}" for i in range(BATCH_ROWS)], pa.string()),
        }
    )

    def generate() -> Iterator[pa.RecordBatch]:
        for i in range(batches):
            if i == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            yield batch
        if kill_after == batches:  # every batch handed over: die while delta-rs finishes
            os.kill(os.getpid(), signal.SIGKILL)

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    store.publish(
        "t",
        pa.RecordBatchReader.from_batches(batch.schema, generate()),
        write=TableWrite(mode=mode),
        tag=CommitTag(f"run{seq}", seq, f"batch{seq}"),
    )
    sys.stdout.write("done\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
